"""What runs write down: figures replaced atomically (temp file, then rename; text files through
``dataset_script.files``), and the package versions recorded."""

from __future__ import annotations

import os
from pathlib import Path


def save_figure_atomically(figure, path: Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as ``path`` (its suffix gives the format), atomically, and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    figure.savefig(partial, dpi=dpi)
    plt.close(figure)
    os.replace(partial, path)
    return path


def package_versions() -> dict[str, str]:
    import datasets
    import timm
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "timm": timm.__version__,
            "datasets": datasets.__version__}  # fmt: skip
