"""How every command of the project reports: one logging format, set up once by each entry point's ``main``."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Send library messages (they go through ``logging``, never ``print``) to the terminal with a timestamp."""
    logging.basicConfig(format=LOG_FORMAT, datefmt="%H:%M:%S", level=level)
