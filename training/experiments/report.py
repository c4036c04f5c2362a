"""One markdown page with every experiment's results and plots, next to the paper's own numbers.

    python -m training.experiments.report --experiments experiments --output_dir experiments

It reads what ``python -m training.experiments`` wrote in ``--experiments`` (``<name>.md``, ``.json``, ``.png``
and each cell's ``results.json``) and the CAM grid (``cam.png``) when it is there; experiments not run yet are
listed with the command that runs them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from dataset_script.console import add_old_spelling, configure_logging
from dataset_script.files import write_text_atomically
from dataset_script.schema import QUALITIES
from training.experiments import paper_results
from training.tables import markdown_table as table

logger = logging.getLogger("training.experiments.report")

REPORT_FILE = "report.md"

ORDER = ("table2", "table3", "table4", "table5", "figure3", "figure4", "figure5", "figure6", "cross_dataset",
         "unseen_generator", "robustness")  # fmt: skip
RUN_WITH = {
    "table2": "--dataset_name DMPLUS --cross_dataset_name FFPP",
    "cross_dataset": "--dataset_name FFPP --test_on CELEBDF,DMPLUS",
    "unseen_generator": "--dataset_name DMPLUS --unseen_dataset_name OTHER",
    "robustness": "--dataset_name D --model_dir DETECTOR",
}
"""The datasets each experiment needs, for the command of one not run yet; the paper's take one, D."""
PAPER_TABLES = {
    "table3": (paper_results.TABLE3, "trained and tested on one quality"),
    "table4": (paper_results.TABLE4, "trained on one quality, tested on another"),
    "table5": (paper_results.TABLE5, "trained on mixed quality"),
}


def wall_times(folder: Path, record: dict) -> dict[str, dict]:
    """Training wall time and video accuracy of each cell, from its own results.json."""
    rows = {}
    for cell in record["cells"]:
        results = folder / "cells" / cell["name"] / "results.json"
        train = json.loads(results.read_text()).get("train", {}) if results.exists() else {}
        seconds = train.get("train_runtime")
        # per-action test sets are in the experiment's own table
        video = {f"video acc {config} %": round(100 * metrics["video_accuracy"], 2)
                 for config, metrics in cell["test"].items()
                 if "video_accuracy" in metrics and config in QUALITIES}  # fmt: skip
        rows[cell["name"]] = {"train s": round(float(seconds)) if seconds is not None else None, **video}
    return rows


def paper_section(name: str) -> list[str]:
    if name == "table2":
        return ["The paper (ResNet50, raw), frame accuracy %; its fine-tuning column does not say which test set "
                "it scores:", "", *table(paper_results.TABLE2, "trained on")]  # fmt: skip
    if name in ("cross_dataset", "unseen_generator", "robustness"):
        return ["Beyond the paper: it has no such experiment."]
    if name in PAPER_TABLES:
        data, what = PAPER_TABLES[name]
        named = {paper_results.MODEL_NAMES[model]: values for model, values in data.items()}
        return [f"The paper ({what}), frame accuracy %:", "", *table(named, "model")]
    if name == "figure5":
        return ["The paper's text (ResNet50, raw, frame accuracy % on the whole test set):", "",
                *table({paper_results.MODEL_NAMES[paper_results.FIGURE5["model"]]:
                        {k: v for k, v in paper_results.FIGURE5.items() if k != "model"}}, "model")]  # fmt: skip
    if name == "figure6":
        return ["The paper's text (per-action frame accuracy %):", "", *table(paper_results.FIGURE6, "action")]
    return ["The paper gives this figure as a chart only; its text: "
            + "; ".join(f for f in paper_results.FINDINGS if name.replace("figure", "Figure ") in f) + "."]  # fmt: skip


def section(folder: Path, name: str, report_dir: Path) -> list[str]:
    results = folder / f"{name}.md"
    if not (results.exists() and (folder / f"{name}.json").exists()):
        datasets = RUN_WITH.get(name, "--dataset_name D")
        return [f"## {name}", "", f"Not run yet: `python -m training.experiments {name} {datasets} --scale quick`.",
                "", *paper_section(name), ""]  # fmt: skip
    record = json.loads((folder / f"{name}.json").read_text())
    ours = results.read_text().splitlines()
    title = ours[0].removeprefix("# ")
    setting = f"{record['dataset']}, scale {record['scale']}, split {record['split_protocol']}, seed {record['seed']}"
    lines = [f"## {title}", "", f"Ours: {setting}.", "", *ours[1:], ""]
    if record["cells"]:  # robustness on a detector trained elsewhere has none
        lines += ["Per cell:", "", *table(wall_times(folder, record), "cell"), ""]
    plot = folder / f"{name}.png"
    if plot.exists():
        lines += [f"![{name}]({os.path.relpath(plot, report_dir)})", ""]
    return lines + [*paper_section(name), ""]


def build_report(folder: Path, out: Path) -> str:
    lines = ["# DeepFake MNIST+: our experiments next to the paper's", "",
             "Frame accuracy in % on the test split unless a column says otherwise. The paper's numbers are from "
             "its section 5 (Huang et al. 2021), on the real dataset with GPUs; ours are what `training.experiments` "
             "measured on the dataset named in each section.", ""]  # fmt: skip
    for name in ORDER:
        lines += section(folder, name, out.parent)
    cam = folder / "cam.png"
    lines += ["## Figure 7: class activation maps", ""]
    if cam.exists():
        lines += [f"![CAM]({os.path.relpath(cam, out.parent)})", ""]
    else:
        lines += ["Not made yet: `python -m training.experiments.cam_figure --model_name_or_path DIR --dataset_name D "
                  f"--output_dir {folder}`.", ""]  # fmt: skip
    versions = next((json.loads(p.read_text()).get("versions") for p in sorted(folder.glob("*.json"))), None)
    if versions:
        lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    text = "\n".join(lines)
    write_text_atomically(out, text)
    return text


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m training.experiments.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=Path, default=Path("experiments"))
    parser.add_argument("--output_dir", type=Path, help=f"where {REPORT_FILE} goes (default: EXPERIMENTS)")
    add_old_spelling(parser, "--out", "--output_dir", dest="output_file")  # a file, not a folder
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    if not args.experiments.is_dir():
        raise SystemExit(f"{args.experiments} does not exist: run `python -m training.experiments ...` first")
    out = getattr(args, "output_file", None) or (args.output_dir or args.experiments) / REPORT_FILE
    build_report(args.experiments, out)
    logger.info("wrote %s", out)
    return str(out)


if __name__ == "__main__":
    main()
