"""What runs write down: figures replaced atomically (a temp file, then a rename, through
``dataset_script.files`` as every file the project writes), and the package versions recorded."""

from __future__ import annotations

from pathlib import Path

from dataset_script.files import atomic_path


def save_figure_atomically(figure, path: Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as ``path`` (its suffix gives the format), atomically, and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as partial:  # keeps the suffix, which gives matplotlib the format
        figure.savefig(partial, dpi=dpi)
    plt.close(figure)
    return path


def package_versions() -> dict[str, str]:
    import datasets
    import timm
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "timm": timm.__version__,
            "datasets": datasets.__version__}  # fmt: skip
