"""Files written so that a reader never sees half of one: a hidden temp file beside it, then a rename. Every
package of the project writes its records this way (generation and training import it from here)."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that a reader never sees half of it (a hidden temp file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
    return path
