"""One factory for every detector, by name: the paper's five and any other timm model.

ImageNet weights are used when they are already in the local Hugging Face cache (nothing is downloaded here);
otherwise the model starts from random weights and says so, and the caller records it in the model card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

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
    crop_pct: float = 1.0  # 1.0: the whole frame resized to the input, as the paper does

    def pretrained_cfg(self, model: nn.Module) -> dict:
        """The model's timm pretrained config with this detector's input: what every reader of frames uses."""
        cfg = dict(model.pretrained_cfg)
        cfg["input_size"] = (3, self.input_size, self.input_size)
        cfg["crop_pct"] = self.crop_pct
        cfg["crop_mode"] = "center"
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
    crop_pct: float = 1.0,
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
        freeze_all_but_classifier(model)
    size = input_size or PAPER_MODELS.get(name) or model.pretrained_cfg["input_size"][-1]
    return model, DetectorInfo(name, size, "imagenet" if use_pretrained else "random", freeze_backbone, crop_pct)


def freeze_all_but_classifier(model: nn.Module) -> None:
    for parameter in model.parameters():
        parameter.requires_grad = False
    for parameter in model.get_classifier().parameters():
        parameter.requires_grad = True


def is_saved_detector(name_or_path: str) -> bool:
    return (Path(name_or_path) / "config.json").is_file()


def load_detector(
    name_or_path: str, freeze_backbone: bool = False, input_size: int | None = None, crop_pct: float | None = None
) -> tuple[nn.Module, DetectorInfo]:
    """A detector saved by ``save_detector``: a local folder, or a Hub id (``org/name``, needs the network).

    Its input size, crop, mean and std come from the saved ``pretrained_cfg``, so it sees what it was trained on.
    ``input_size`` or ``crop_pct`` given replace the saved ones (to evaluate or fine-tune at another input); a model
    whose config fixes its input size (``fixed_input_size``, as ViTs) refuses another size.
    """
    if input_size is not None and input_size <= 0:
        raise ValueError(f"input_size must be a positive number of pixels, not {input_size}")
    if crop_pct is not None and not crop_pct > 0:
        raise ValueError(f"crop_pct must be positive, not {crop_pct}")
    if is_saved_detector(name_or_path):
        source = f"local-dir:{Path(name_or_path).resolve()}"
    elif Path(name_or_path).exists():
        raise FileNotFoundError(f"{name_or_path} is a folder without config.json: not a saved detector")
    elif name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(f"{name_or_path}: no such folder (expected a saved detector folder or a Hub id)")
    elif "/" in name_or_path:
        source = f"hf-hub:{name_or_path}"
    else:
        raise ValueError(f"{name_or_path!r} is neither a timm model name, a saved detector folder, nor a Hub id")
    try:
        model = timm.create_model(source, pretrained=True)
    except (OSError, ValueError) as error:  # offline, missing repo, or files that are not a detector
        raise FileNotFoundError(f"cannot load the detector {name_or_path!r}: {error}") from error
    if model.get_classifier().out_features != len(LABELS):
        raise ValueError(f"{name_or_path} has {model.get_classifier().out_features} outputs, not real/fake")
    saved_size = model.pretrained_cfg["input_size"][-1]
    saved_crop = float(model.pretrained_cfg.get("crop_pct") or 1.0)
    size = input_size or saved_size
    crop = saved_crop if crop_pct is None else float(crop_pct)
    if size != saved_size and model.pretrained_cfg.get("fixed_input_size"):
        raise ValueError(f"{name_or_path} takes {saved_size}x{saved_size} inputs only (its pretrained_cfg fixes the "
                         f"input size): cannot use input_size={size}")  # fmt: skip
    if (size, crop) != (saved_size, saved_crop):
        logger.info("%s: input %d, crop_pct %g instead of the saved %d, %g", name_or_path, size, crop, saved_size,
                    saved_crop)  # fmt: skip
    if freeze_backbone:
        freeze_all_but_classifier(model)
    architecture = model.pretrained_cfg.get("architecture") or type(model).__name__.lower()
    return model, DetectorInfo(architecture, size, f"trained detector {name_or_path}", freeze_backbone, crop)


def detector(name_or_path: str, **kwargs) -> tuple[nn.Module, DetectorInfo]:
    """``create_detector`` for a timm model name, ``load_detector`` for a saved detector (folder or Hub id).

    A saved detector takes ``freeze_backbone``, ``input_size`` and ``crop_pct``; any other option of
    ``create_detector`` would change what it is (its weights, its head), so asking for one is an error, not ignored.
    """
    if is_saved_detector(name_or_path) or (name_or_path not in timm.list_models() and "/" in name_or_path):
        loaded = {key: kwargs.pop(key) for key in ("freeze_backbone", "input_size", "crop_pct") if key in kwargs}
        if kwargs.get("num_classes") == len(LABELS):
            kwargs.pop("num_classes")
        if kwargs.get("pretrained") is None:
            kwargs.pop("pretrained", None)
        if kwargs:
            raise ValueError(f"{name_or_path} is a saved detector, with its own weights and real/fake head: "
                             f"{', '.join(f'{k}={v!r}' for k, v in kwargs.items())} cannot apply to it "
                             "(these options are for timm model names)")  # fmt: skip
        return load_detector(name_or_path, freeze_backbone=bool(loaded.pop("freeze_backbone", False)), **loaded)
    return create_detector(name_or_path, **kwargs)
