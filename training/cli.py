"""``dmplus``: every command of the project under one name, each exactly its ``python -m`` module.

    dmplus build SOURCE --output_dir deepfake_mnist_plus      # = python -m dataset_script.build ...
    dmplus train --preset demo --dataset_name deepfake_mnist_plus
    dmplus COMMAND --help

A command's module is imported only when that command runs, so ``dmplus --help`` starts without torch. ``space``
runs ``spaces/detector/app.py``, which is not an installed package (a top-level ``spaces`` module would shadow
the Hub's own): it is found beside the installed ``training`` package, that is in a clone of the repository, or
under the working folder.
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys
from pathlib import Path

SPACE_SCRIPT = "spaces/detector/app.py"

COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("dataset_script.build", "build a dataset repo from a release or a collection of videos"),
    "mini": ("generation.mini.__main__", "make the synthetic mini, or offline replicas of other releases"),
    "generate": ("generation.generate", "animate source faces with driving videos (FOMM, TPSMM, warp)"),
    "train": ("training.train", "train a detector with the Trainer (accelerate launch training/train.py too)"),
    "evaluate": ("training.evaluate_detector", "score a detector with the paper's protocol"),
    "experiments": ("training.experiments.command", "run one of the paper's tables or figures, or one beyond it"),
    "report": ("training.experiments.report", "gather every experiment's results beside the paper's"),
    "cam": ("training.experiments.cam_figure", "class activation maps of a detector, one row per action (Figure 7)"),
    "space": (SPACE_SCRIPT, "serve the Gradio Space that checks an uploaded clip"),
    "inspect": ("dataset_script.inspect_repo", "load a built dataset repo and describe its configurations"),
}
"""Subcommand: (the module whose ``main(argv)`` it runs, or the Space's script; what it does)."""


def space_script() -> Path:
    """The Space's app.py in the repository this package runs from, or under the working folder."""
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (root / SPACE_SCRIPT).is_file():
            return root / SPACE_SCRIPT
    raise SystemExit(f"dmplus space: no {SPACE_SCRIPT} here. The Space is not part of the installed package: "
                     "run dmplus in a clone of the repository (pip install -e '.[space]')")  # fmt: skip


def command_main(name: str):
    """The ``main(argv)`` of a subcommand, imported now."""
    target = COMMANDS[name][0]
    if target == SPACE_SCRIPT:
        return runpy.run_path(str(space_script()), run_name="dmplus_space")["main"]
    return importlib.import_module(target).main


def parser() -> argparse.ArgumentParser:
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items())
    described = argparse.ArgumentParser(
        prog="dmplus",
        usage="dmplus [-h] COMMAND [ARGUMENTS ...]",
        description="Every command of deepfake-mnist-plus, each exactly its python -m module.\n\ncommands:\n" + listing,
        epilog="dmplus COMMAND --help gives a command's own options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    described.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="one of the commands above")
    return described


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # only the first word is ours: the rest, --help included, is the command's
    name = parser().parse_args(argv[:1]).command
    result = command_main(name)(argv[1:])
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
