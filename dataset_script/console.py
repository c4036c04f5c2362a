"""How every command of the project talks to its user: one logging format, set up once by each entry point's
``main``, and one way to rename a command-line option without breaking the commands people have written down."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

logger = logging.getLogger(__name__)


def configure_logging(level: int = logging.INFO) -> None:
    """Send library messages (they go through ``logging``, never ``print``) to the terminal with a timestamp."""
    logging.basicConfig(format=LOG_FORMAT, datefmt="%H:%M:%S", level=level)


class _OldSpelling(argparse.Action):
    """An option's former name: sets what the new name sets, and says it is going."""

    def __init__(self, option_strings, dest, new: str, target: argparse.Action, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new, self.target = new, target

    def __call__(self, parser, namespace, values, option_string=None):
        # logging, not warnings: a DeprecationWarning is hidden outside __main__, and the user is the one to tell
        logger.warning("%s is deprecated and goes in the next release: use %s", option_string, self.new)
        if self.nargs == 0:
            values = self.const
        setattr(namespace, self.dest, values)
        # argparse checks required options once all are read: the old name meets the new one's requirement (for
        # this parse: every command builds its parser afresh for each parse)
        self.target.required = False


def add_old_spelling(
    parser: argparse.ArgumentParser,
    old: str,
    new: str,
    *,
    convert: Callable[[str], Any] | None = None,
    dest: str | None = None,
) -> None:
    """Keep ``old``, a former name of the option ``new``, working for one release: hidden from ``--help``, it sets
    what ``new`` sets and logs a warning that names ``new``.

    ``convert`` turns the old option's one value (a string; bare, it reads ``"true"``) into the new one's, raising
    ``argparse.ArgumentTypeError`` on a value it cannot read, for an option whose sense changed (``--progress
    false`` is ``--no_progress``). ``dest`` keeps the value apart under that name instead, for an option whose
    meaning changed (``--output FILE`` against ``--output_dir DIR``)."""
    target = parser._option_string_actions[new]  # argparse has no public lookup of an option by name
    if convert is not None:
        shape = {"nargs": "?", "const": convert("true"), "type": convert}
    else:
        shape = {"nargs": target.nargs, "const": target.const, "type": target.type, "choices": target.choices}
    parser.add_argument(old, action=_OldSpelling, dest=dest or target.dest, new=new, target=target,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS, **shape)  # fmt: skip


def add_old_progress_switch(parser: argparse.ArgumentParser) -> None:
    """``--progress false``, the former spelling of ``--no_progress`` where progress was a dataclass bool."""
    add_old_spelling(parser, "--progress", "--no_progress", convert=_is_false)


def _is_false(value: str) -> bool:
    """HfArgumentParser's reading of a bool, negated: ``--progress no`` meant no progress bars."""
    if value.lower() in ("false", "f", "no", "n", "0"):
        return True
    if value.lower() in ("true", "t", "yes", "y", "1"):
        return False
    raise argparse.ArgumentTypeError(f"--progress takes true or false, not {value!r}")
