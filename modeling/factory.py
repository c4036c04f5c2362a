"""One factory for every detector, by name: the paper's five and any other timm model.

ImageNet weights are used when they are already in the local Hugging Face cache (nothing is downloaded here);
otherwise the model starts from random weights and says so, and the caller records it in the model card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import timm
from torch import nn

from . import mesonet  # noqa: F401  (registers mesoinception4 with timm)

logger = logging.getLogger(__name__)

PAPER_MODELS: dict[str, int] = {
    # name -> the paper's input size (224 for ResNets, 256 for Xception and MesoInception)
    "resnet50": 224,
    "resnet101": 224,
    "resnet152": 224,
    "legacy_xception": 256,
    "mesoinception4": 256,
}
LABELS = ("real", "fake")


@dataclass
class DetectorInfo:
    name: str
    input_size: int
    init: str  # "imagenet" or "random"
    frozen_backbone: bool

    def pretrained_cfg(self, model: nn.Module) -> dict:
        cfg = dict(model.pretrained_cfg)
        cfg["input_size"] = (3, self.input_size, self.input_size)
        return cfg


def cached_imagenet_weights(name: str) -> bool:
    """Whether timm's pretrained weights for ``name`` are in the local HF cache (no network is used)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        hub_id = timm.models.get_pretrained_cfg(name).hf_hub_id
    except (AttributeError, RuntimeError):
        return False
    if not hub_id:
        return False
    repo, _, revision = hub_id.partition("@")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename, revision=revision or None)
        if isinstance(found, str):
            return True
    return False


def create_detector(
    name: str,
    num_classes: int = 2,
    pretrained: bool | None = None,
    freeze_backbone: bool = False,
    input_size: int | None = None,
    **kwargs,
) -> tuple[nn.Module, DetectorInfo]:
    """Build detector ``name`` (a timm model name) with a fresh ``num_classes`` head.

    ``pretrained=None`` takes ImageNet weights if they are cached and random ones otherwise; ``True`` insists.
    ``freeze_backbone`` trains the new classifier only (the paper does this for Xception).
    """
    if name not in timm.list_models() and name not in PAPER_MODELS:
        raise ValueError(
            f"unknown model {name!r}: use one of the paper's {sorted(PAPER_MODELS)} or any timm model name "
            "(see timm.list_models())"
        )
    cached = cached_imagenet_weights(name)
    if pretrained and not cached:
        raise FileNotFoundError(f"no ImageNet weights for {name} in the local Hugging Face cache; pass pretrained=None")
    use_pretrained = cached if pretrained is None else pretrained
    if not use_pretrained:
        logger.warning("%s: no ImageNet weights in the local HF cache; starting from random weights", name)
    model = timm.create_model(name, pretrained=use_pretrained, num_classes=num_classes, **kwargs)
    if freeze_backbone:
        for parameter in model.parameters():
            parameter.requires_grad = False
        for parameter in model.get_classifier().parameters():
            parameter.requires_grad = True
    size = input_size or PAPER_MODELS.get(name) or model.pretrained_cfg["input_size"][-1]
    return model, DetectorInfo(name, size, "imagenet" if use_pretrained else "random", freeze_backbone)
