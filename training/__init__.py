"""Training and evaluating DeepFake MNIST+ detectors: data subsets, metrics, the Trainer entry point.

The names below are loaded on first use, so that ``dmplus --help`` and a command's ``--help`` start without torch.
"""

from importlib import import_module

_HOMES = {"MIXED": "data", "Subset": "data", "load_split": "data", "with_sampling": "data",
          "Predictions": "evaluation", "predict": "evaluation", "SingleClassError": "metrics",
          "detection_metrics": "metrics"}  # fmt: skip

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
