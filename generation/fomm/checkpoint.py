"""Building FOMM vox-256 and loading the official checkpoint into it, strictly and without unpickling code.

    python -m generation.fomm.checkpoint vox-cpk.pth.tar --out vox-256.safetensors   # convert once

``load_vox256`` takes either the official ``.pth.tar`` (read with ``torch.load(weights_only=True)``) or the
converted ``.safetensors`` (keys prefixed ``kp_detector.`` and ``generator.``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from torch import nn

from dataset_script.console import configure_logging
from dataset_script.files import atomic_path

from .generator import OcclusionAwareGenerator
from .keypoint_detector import KeypointDetector

logger = logging.getLogger("generation.fomm.checkpoint")  # not __name__: run with -m, that is __main__

VOX256 = {
    "common": {"num_kp": 10, "num_channels": 3},
    "kp_detector": {"block_expansion": 32, "max_features": 1024, "num_blocks": 5, "temperature": 0.1,
                    "scale_factor": 0.25, "estimate_jacobian": True},
    "generator": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 2, "num_bottleneck_blocks": 6,
                  "estimate_occlusion_map": True,
                  "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5,
                                          "scale_factor": 0.25}},
}  # fmt: skip
"""config/vox-256.yaml of the first-order-model repository."""

PARTS = ("kp_detector", "generator")


def build_vox256() -> tuple[KeypointDetector, OcclusionAwareGenerator]:
    """The two networks of FOMM vox-256 with fresh weights, in eval mode."""
    kp_detector = KeypointDetector(**VOX256["common"], **VOX256["kp_detector"])
    generator = OcclusionAwareGenerator(**VOX256["common"], **VOX256["generator"])
    return kp_detector.eval(), generator.eval()


def calibrate_batch_norm(kp_detector: nn.Module, generator: nn.Module, size: int = 128, batches: int = 2,
                         seed: int = 0) -> None:  # fmt: skip
    """Give freshly built networks the batch-norm statistics of a few random frames. Fresh statistics (mean 0,
    variance 1) leave random weights' activations tiny and the frames they make nearly flat, which makes any
    comparison of two ways of computing them pass trivially; calibrated, the frames span a realistic range."""
    generator_rng = torch.Generator().manual_seed(seed)
    for module in (kp_detector, generator):
        for norm in module.modules():
            if isinstance(norm, nn.BatchNorm2d):
                norm.reset_running_stats()
                norm.momentum = None  # a plain average over the batches
        module.train()
    with torch.no_grad():
        for _ in range(batches):
            frames = torch.rand(2, 3, size, size, generator=generator_rng)
            keypoints = kp_detector(frames)
            generator(frames[:1].expand(2, -1, -1, -1), keypoints, {k: v.flip(0) for k, v in keypoints.items()})
    for module in (kp_detector, generator):
        for norm in module.modules():
            if isinstance(norm, nn.BatchNorm2d):
                norm.momentum = 0.1
        module.eval()


def _read_state_dicts(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(str(path))
        return {part: {k[len(part) + 1 :]: v for k, v in flat.items() if k.startswith(part + ".")} for part in PARTS}
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types; say which file and why
        raise ValueError(f"{path}: not a loadable FOMM checkpoint ({type(error).__name__}: {error})") from error
    missing = [part for part in PARTS if not isinstance(checkpoint, dict) or part not in checkpoint]
    if missing:
        keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path}: no {' or '.join(missing)} entry (found {keys}); expected FOMM's vox-cpk.pth.tar")
    return {part: checkpoint[part] for part in PARTS}


def load_vox256(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[KeypointDetector, OcclusionAwareGenerator]:
    """The official vox-256 checkpoint (or its safetensors conversion) loaded strictly, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint; download vox-cpk.pth.tar from the first-order-model "
                                "project's checkpoint folder")  # fmt: skip
    state_dicts = _read_state_dicts(path)
    kp_detector, generator = build_vox256()
    for part, module in zip(PARTS, (kp_detector, generator), strict=True):
        try:
            module.load_state_dict(state_dicts[part], strict=True)
        except RuntimeError as error:
            raise ValueError(f"{path}: its {part} does not fit FOMM vox-256: {error}") from error
    return kp_detector.to(device).eval(), generator.to(device).eval()


def convert(source: str | Path, out: str | Path) -> Path:
    """Write the two networks of a checkpoint as one safetensors file (atomically)."""
    from safetensors.torch import save_file

    kp_detector, generator = load_vox256(source)
    tensors = {f"{part}.{k}": v.contiguous() for part, module in zip(PARTS, (kp_detector, generator), strict=True)
               for k, v in module.state_dict().items()}  # fmt: skip
    out = Path(out)
    with atomic_path(out, per_process=True) as partial:
        save_file(tensors, str(partial), metadata={"format": "pt", "model": "fomm-vox256"})
    return out


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m generation.fomm.checkpoint", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="vox-cpk.pth.tar")
    parser.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        out = convert(args.checkpoint, args.out)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(str(error)) from error
    kp_detector, generator = load_vox256(out)
    logger.info("wrote %s: keypoint detector %s and generator %s parameters", out, f"{_count(kp_detector):,}",
                f"{_count(generator):,}")  # fmt: skip


if __name__ == "__main__":
    main()
