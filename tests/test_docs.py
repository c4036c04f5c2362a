"""Every command the README and docs/ give is one that runs as written: each ``python -m`` module and each script
answers ``--help`` and lists every ``--flag`` the docs pass it, each ``accelerate launch`` flag is accelerate's, each
``make`` target is in the Makefile, and each ``python -c`` snippet and python block parses.

Commands are taken from fenced shell blocks (every line) and from inline code anywhere in the text that starts with
``python``, ``make``, ``accelerate launch`` or ``dmplus`` (the README's task table); a ``dmplus`` subcommand is
checked as the module it runs. The ``--help`` runs happen in one
subprocess, so that scripts run as ``python path/to/script.py`` see the ``sys.path`` Python gives them and nothing
they import stays in this worker."""

from __future__ import annotations

import contextlib
import io
import json
import re
import runpy
import shlex
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from training.cli import COMMANDS, SPACE_SCRIPT

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"bash", "sh", "shell", "console"}
PYTHONS = {"python", "python3"}
INLINE_COMMAND = re.compile(r"`((?:\S*python3?|make|accelerate launch|dmplus) [^`]+)`")
SUBCOMMAND = re.compile(r"[a-z][a-z0-9_]*")
"""A leading word kept in front of ``--help`` (``table3``): a subcommand may have flags of its own. Paths are not."""


@dataclass(frozen=True)
class Command:
    where: str  # "docs/x.md:12"
    text: str
    program: str  # "module", "script", "accelerate", "make", "python -c", or "" (not ours to check)
    target: str  # the module, the script's path, the make target or the -c code
    leading: tuple[str, ...]  # subcommand words before the first flag
    flags: tuple[str, ...]  # the --flags given to the target
    launcher_flags: tuple[str, ...] = ()  # accelerate launch's own

    @property
    def help_key(self) -> str:
        return f"{self.program}:{self.target}:{' '.join(self.leading)}"


def _words(line: str) -> list[list[str]]:
    """The simple commands of one shell line, as words, with comments, ``&&``/``;``/``|`` and ``VAR=value``
    prefixes taken apart."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for word in lexer:
        if word in {"&&", "||", ";", "|", "&"}:
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    for words in commands:
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words.pop(0)
    return [words for words in commands if words]


def _flags(words: list[str]) -> tuple[str, ...]:
    return tuple(word.split("=", 1)[0] for word in words if word.startswith("--") and len(word) > 2)


def _leading(words: list[str]) -> tuple[str, ...]:
    leading = []
    for word in words:
        if word.startswith("-"):
            break
        leading.append(word)
    return tuple(word for word in leading if SUBCOMMAND.fullmatch(word))


def parse_command(words: list[str], where: str, text: str) -> Command:
    """What ``words`` run: a module or script of ours, accelerate, make, a ``-c`` snippet, or something else."""
    program, rest = words[0], words[1:]
    if program == "make":
        return Command(where, text, "make", rest[0] if rest else "", (), ())
    if program == "accelerate" and rest[:1] == ["launch"]:
        launcher = rest[1:]
        script = next((i for i, word in enumerate(launcher) if word.endswith(".py") or word == "-m"), None)
        if script is None:
            return Command(where, text, "accelerate", "", (), (), _flags(launcher))
        inner = ["python", *launcher[script:]]
        command = parse_command(inner, where, text)
        return Command(where, text, command.program, command.target, command.leading, command.flags,
                       _flags(launcher[:script]))  # fmt: skip
    if program == "dmplus" and rest and rest[0] in COMMANDS:  # its subcommand's module, or the Space's script
        target = COMMANDS[rest[0]][0]
        return parse_command(["python", *([target] if target == SPACE_SCRIPT else ["-m", target]), *rest[1:]], where,
                             text)  # fmt: skip
    if Path(program).name not in PYTHONS or not rest:
        return Command(where, text, "", program, (), ())
    if rest[0] == "-c":
        return Command(where, text, "python -c", rest[1], (), ())
    if rest[0] == "-m":
        return Command(where, text, "module", rest[1], _leading(rest[2:]), _flags(rest[2:]))
    return Command(where, text, "script", rest[0], _leading(rest[1:]), _flags(rest[1:]))


def doc_commands() -> list[Command]:
    commands = []
    for doc in DOCS:
        name = doc.relative_to(ROOT).as_posix()
        lines = doc.read_text().splitlines()
        fence, start, pending = None, 0, ""
        for number, line in enumerate(lines, 1):
            if line.startswith("```"):
                fence = line[3:].strip() if fence is None else None
                continue
            if fence in SHELL_FENCES:
                start = start if pending else number
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                text, pending = pending + line, ""
                for words in _words(text):
                    commands.append(parse_command(words, f"{name}:{start}", text.strip()))
            elif fence is None:
                for match in INLINE_COMMAND.finditer(line):
                    for words in _words(match.group(1)):
                        commands.append(parse_command(words, f"{name}:{number}", match.group(1)))
    return commands


def python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in DOCS:
        text = doc.read_text()
        for match in re.finditer(r"^```python\n(.*?)^```", text, re.M | re.S):
            blocks.append((f"{doc.relative_to(ROOT).as_posix()}:{text[: match.start()].count(chr(10)) + 1}",
                           match.group(1)))  # fmt: skip
    return blocks


# --- the --help runs, in a subprocess of their own ---------------------------------------------------------------


def _run_help(program: str, target: str, leading: list[str]) -> tuple[int | str | None, str]:
    """(exit status, what it printed) of ``target --help``, run as ``python -m target`` or ``python target`` would run
    it; accelerate's launcher prints its parser's help."""
    if program == "accelerate":
        from accelerate.commands.launch import launch_command_parser

        return 0, launch_command_parser().format_help()
    out = io.StringIO()
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    before = set(sys.modules)
    status: int | str | None = "returned without exiting: --help should print the help and exit"
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if program == "module":
                sys.argv = [target, *leading, "--help"]
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                path = ROOT / target
                sys.argv = [str(path), *leading, "--help"]
                sys.path.insert(0, str(path.parent))  # as `python path/to/script.py` does
                runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code
    except BaseException:  # noqa: BLE001 - reported, with its traceback, as the command's failure
        status = "raised:\n" + traceback.format_exc()
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        if program == "script":  # top-level modules found only beside the script are that script's, not ours
            folder = str((ROOT / target).parent)
            for name in set(sys.modules) - before:
                if "." not in name and str(getattr(sys.modules[name], "__file__", "") or "").startswith(folder):
                    del sys.modules[name]
    return status, out.getvalue()


def run_helps(requests_file: str, results_file: str) -> None:
    """The subprocess's side: each request's ``--help`` in turn, the results written as JSON."""
    requests = json.loads(Path(requests_file).read_text())
    results = {}
    for key, (program, target, leading) in requests.items():
        status, text = _run_help(program, target, leading)
        results[key] = {"status": status, "help": text}
    Path(results_file).write_text(json.dumps(results))


@pytest.fixture(scope="module")
def helps(tmp_path_factory) -> dict[str, dict]:
    requests = {c.help_key: (c.program, c.target, list(c.leading)) for c in doc_commands()
                if c.program in {"module", "script"}}  # fmt: skip
    requests["accelerate::"] = ("accelerate", "", [])
    folder = tmp_path_factory.mktemp("helps")
    (folder / "requests.json").write_text(json.dumps(requests))
    code = f"from tests.test_docs import run_helps; run_helps({str(folder / 'requests.json')!r}, " \
           f"{str(folder / 'results.json')!r})"  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((folder / "results.json").read_text())


# --- the checks ---------------------------------------------------------------------------------------------------


def test_the_docs_give_commands_of_each_kind():
    """The extraction itself: the README's task table and the docs' blocks reach each kind of command."""
    commands = doc_commands()
    assert {"module", "script", "make", "python -c"} <= {command.program for command in commands}
    readme = [command for command in commands if command.where.startswith("README.md")]
    assert {"make", "module", "script"} <= {command.program for command in readme}
    launched = [command for command in readme if command.text.startswith("accelerate launch")]
    assert launched and all(command.program == "script" for command in launched)


def test_the_extraction_sees_flags_subcommands_launchers_and_prefixes():
    words = _words("cd out && HF_HUB_OFFLINE=1 .venv/bin/python -m training.experiments table3 --scale=quick # a note")
    assert words == [["cd", "out"], [".venv/bin/python", "-m", "training.experiments", "table3", "--scale=quick"]]
    command = parse_command(words[1], "x", "")
    expected = ("module", "training.experiments", ("table3",), ("--scale",))
    assert (command.program, command.target, command.leading, command.flags) == expected
    launched = parse_command(shlex.split("accelerate launch --multi_gpu --num_processes 2 training/train.py "
                                         "--use_cpu true"), "x", "")  # fmt: skip
    expected = ("script", "training/train.py", ("--use_cpu",), ("--multi_gpu", "--num_processes"))
    assert (launched.program, launched.target, launched.flags, launched.launcher_flags) == expected
    built = parse_command(shlex.split("python -m dataset_script.build /data/DeepFakeMnist --output_dir repo"), "x", "")
    assert built.leading == ()  # a path is no subcommand
    dmplus = parse_command(shlex.split("dmplus experiments table3 --scale quick"), "x", "")
    assert (dmplus.program, dmplus.target, dmplus.leading) == ("module", COMMANDS["experiments"][0], ("table3",))
    assert parse_command(["dmplus", "space", "--model", "m"], "x", "").target == "spaces/detector/app.py"


def _has_flag(help_text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


def test_every_flag_the_docs_use_is_in_its_commands_help(helps):
    problems = []
    for command in doc_commands():
        if command.program in {"module", "script"}:
            result = helps[command.help_key]
            if result["status"] not in (0, None):
                problems.append(f"{command.where}: `{command.text}`: --help gave {result['status']}\n"
                                f"{result['help'][-1500:]}")  # fmt: skip
                continue
            missing = [flag for flag in command.flags if flag != "--help" and not _has_flag(result["help"], flag)]
            problems += [f"{command.where}: `{command.text}`: {flag} is not in {command.target}'s --help"
                         for flag in missing]  # fmt: skip
        if command.launcher_flags:
            launcher = helps["accelerate::"]["help"]
            problems += [f"{command.where}: `{command.text}`: {flag} is not an accelerate launch flag"
                         for flag in command.launcher_flags if not _has_flag(launcher, flag)]  # fmt: skip
    assert not problems, "\n".join(problems)


def test_every_make_target_the_docs_use_is_in_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", makefile, re.M))
    missing = [f"{c.where}: `{c.text}`" for c in doc_commands() if c.program == "make" and c.target not in targets]
    assert not missing, "no such make target:\n" + "\n".join(missing)


def test_python_snippets_parse():
    snippets = [(c.where, c.target) for c in doc_commands() if c.program == "python -c"] + python_blocks()
    assert snippets
    for where, code in snippets:
        compile(code, where, "exec")  # a SyntaxError names the doc and its line


@pytest.mark.slow
def test_the_python_example_trains_and_evaluates_as_written(smoke_mini_repo, tmp_path, monkeypatch, capsys):
    """docs/training.md's example, run as it is written, on the smoke mini in the place of the demo's dataset."""
    ((where, code),) = [(where, code) for where, code in python_blocks()
                        if where.startswith("docs/training.md") and "train(*arguments)" in code]  # fmt: skip
    assert len(code.strip().splitlines()) <= 10
    (tmp_path / "demo_output").mkdir()
    (tmp_path / "demo_output" / "deepfake_mnist_plus").symlink_to(smoke_mini_repo, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    assert "trained, test video AUC:" in printed and "evaluated, video accuracy:" in printed
    written = {path.name for path in (tmp_path / "runs" / "api").iterdir()}
    assert {"model.safetensors", "config.json", "results.json"} <= written
