"""Detectors as transformers models (``TimmWrapperForImageClassification``) that timm loads too.

The saved folder holds ``config.json`` (timm's hub config, which is also a ``TimmWrapperConfig``) and
``model.safetensors`` with timm's own parameter names, so both of these load it with identical logits:

    AutoModelForImageClassification.from_pretrained(folder)
    timm.create_model("local-dir:" + folder, pretrained=True)   # after `import modeling`
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

from .factory import LABELS, DetectorInfo

FAKE_CLASS = LABELS.index("fake")
"""Where the fake class's logit is: every detector's ``id2label`` is ``LABELS``."""


def fake_probability(logits: torch.Tensor) -> torch.Tensor:
    """The fake probability of each row of (N, 2) real/fake logits (their softmax's fake entry, in float32)."""
    return logits.float().softmax(-1)[:, FAKE_CLASS]


def wrapper_config(model: nn.Module, info: DetectorInfo) -> TimmWrapperConfig:
    return TimmWrapperConfig(
        architecture=info.name,
        pretrained_cfg=info.pretrained_cfg(model),
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: index for index, label in enumerate(LABELS)},
        do_pooling=False,
        model_args={},  # timm reads this key and fails on null
    )


def wrap(model: nn.Module, info: DetectorInfo) -> TimmWrapperForImageClassification:
    """A transformers model around (a copy of the weights of) the timm ``model``."""
    wrapped = TimmWrapperForImageClassification(wrapper_config(model, info))
    wrapped.timm_model.load_state_dict(model.state_dict())
    trainable = dict(model.named_parameters())
    for name, parameter in wrapped.timm_model.named_parameters():  # keep a frozen backbone frozen
        parameter.requires_grad = trainable[name].requires_grad
    return wrapped


def save_detector(model: nn.Module, info: DetectorInfo, folder: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (timm parameter names) into ``folder``.

    Both are written under a hidden folder beside them and renamed into place, the weights first: a reader (the
    Space, a resumed experiment) never loads half a file, and a ``config.json`` means its weights are complete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = wrapper_config(model, info)
    config.num_classes = len(LABELS)
    staging = folder / f".saving.{os.getpid()}"
    staging.mkdir(exist_ok=True)
    try:
        config.save_pretrained(staging)
        state = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
        save_file(state, staging / "model.safetensors", metadata={"format": "pt"})
        for name in ("model.safetensors", "config.json"):
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def timm_model_of(model: nn.Module) -> nn.Module:
    """The timm module inside a wrapper (or the module itself)."""
    return getattr(model, "timm_model", model)


@torch.no_grad()
def cam_inputs(model: nn.Module, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What class activation maps need: the last convolutional features and, for global-average-pooled models,
    the classifier weights (None where the head is not a single linear layer on pooled features: use Grad-CAM)."""
    inner = timm_model_of(model)
    features = inner.forward_features(pixel_values)
    classifier = inner.get_classifier()
    pooled_globally = hasattr(inner, "global_pool") and isinstance(classifier, nn.Linear)
    weights = classifier.weight if pooled_globally and classifier.in_features == features.shape[1] else None
    return features, weights
