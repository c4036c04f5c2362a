"""DeepFake MNIST+ data: schema, compression, building the dataset repo, and frame sampling."""

from .schema import (
    ACTIONS,
    EVAL_FRAMES_PER_VIDEO,
    LABEL_NAMES,
    QUALITIES,
    all_config_names,
)

__all__ = [
    "ACTIONS",
    "EVAL_FRAMES_PER_VIDEO",
    "LABEL_NAMES",
    "QUALITIES",
    "all_config_names",
]
