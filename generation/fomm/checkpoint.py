"""Building FOMM vox-256 and loading the official checkpoint into it, strictly and without unpickling code.

    python -m generation.fomm.checkpoint vox-cpk.pth.tar --out vox-256.safetensors   # convert once

``load_vox256`` takes either the official ``.pth.tar`` (read with ``torch.load(weights_only=True)``) or the
converted ``.safetensors`` (keys prefixed ``kp_detector.`` and ``generator.``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable
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


@contextlib.contextmanager
def batch_norm_calibration(*modules: nn.Module):
    """Within the block, the batch norms of ``modules`` gather fresh statistics, a plain average over the batches
    run through them (in train mode, without gradients); afterwards the modules are in eval mode."""
    norms = [norm for module in modules for norm in module.modules()
             if isinstance(norm, nn.modules.batchnorm._BatchNorm)]  # fmt: skip
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the batches
    for module in modules:
        module.train()
    try:
        with torch.no_grad():
            yield
    finally:
        for norm in norms:
            norm.momentum = 0.1
        for module in modules:
            module.eval()


def calibrate_batch_norm(kp_detector: nn.Module, generator: nn.Module, size: int = 128, batches: int = 2,
                         seed: int = 0) -> None:  # fmt: skip
    """Give freshly built networks the batch-norm statistics of a few random frames. Fresh statistics (mean 0,
    variance 1) leave random weights' activations tiny and the frames they make nearly flat, which makes any
    comparison of two ways of computing them pass trivially; calibrated, the frames span a realistic range."""
    generator_rng = torch.Generator().manual_seed(seed)
    with batch_norm_calibration(kp_detector, generator):
        for _ in range(batches):
            frames = torch.rand(2, 3, size, size, generator=generator_rng)
            keypoints = kp_detector(frames)
            generator(frames[:1].expand(2, -1, -1, -1), keypoints, {k: v.flip(0) for k, v in keypoints.items()})


def read_state_dicts(path: Path, parts: tuple[str, ...], model: str, expected: str,
                     optional: tuple[str, ...] = ()) -> dict[str, dict[str, torch.Tensor]]:  # fmt: skip
    """The state dicts of a checkpoint's entries ``parts`` (all needed) and ``optional`` (when present): from an
    official ``torch.save``'d dict, read with ``weights_only=True``, or from our safetensors conversion, whose keys
    are prefixed by the entry's name. ``model`` and ``expected`` (the official file) are for the errors."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(str(path))
        found = {part: {k[len(part) + 1 :]: v for k, v in flat.items() if k.startswith(part + ".")}
                 for part in parts + optional}  # fmt: skip
        return {part: state for part, state in found.items() if state or part in parts}
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types; say which file and why
        raise ValueError(f"{path}: not a loadable {model} checkpoint ({type(error).__name__}: {error})") from error
    missing = [part for part in parts if not isinstance(checkpoint, dict) or part not in checkpoint]
    if missing:
        keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path}: no {' or '.join(missing)} entry (found {keys}); expected {expected}")
    return {part: checkpoint[part] for part in parts + optional if part in checkpoint}


def load_strictly(path: Path, modules: dict[str, nn.Module], state_dicts: dict[str, dict], model: str,
                  assign: bool = False) -> None:  # fmt: skip
    """Load each entry's state dict into its module, every key and shape matching; a mismatch is an error that
    names the file and the entry. ``assign``: take the loaded tensors themselves (for modules built on the meta
    device, which skips initialising weights the checkpoint replaces)."""
    for part, module in modules.items():
        try:
            module.load_state_dict(state_dicts[part], strict=True, assign=assign)
        except RuntimeError as error:
            raise ValueError(f"{path}: its {part} does not fit {model}: {error}") from error


def save_safetensors(modules: dict[str, nn.Module], out: Path, model: str) -> Path:
    """The modules' state dicts as one safetensors file (atomically), keys prefixed by the entry names."""
    from safetensors.torch import save_file

    tensors = {f"{part}.{k}": v.contiguous() for part, module in modules.items()
               for k, v in module.state_dict().items()}  # fmt: skip
    with atomic_path(out, per_process=True) as partial:
        save_file(tensors, str(partial), metadata={"format": "pt", "model": model})
    return out


def load_vox256(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[KeypointDetector, OcclusionAwareGenerator]:
    """The official vox-256 checkpoint (or its safetensors conversion) loaded strictly, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint; download vox-cpk.pth.tar from the first-order-model "
                                "project's checkpoint folder")  # fmt: skip
    state_dicts = read_state_dicts(path, PARTS, "FOMM", "FOMM's vox-cpk.pth.tar")
    with torch.device("meta"):  # no random initialisation of what the checkpoint replaces (half a second a load)
        kp_detector, generator = build_vox256()
    load_strictly(path, dict(zip(PARTS, (kp_detector, generator), strict=True)), state_dicts, "FOMM vox-256",
                  assign=True)  # fmt: skip
    return kp_detector.to(device).eval(), generator.to(device).eval()


def convert(source: str | Path, out: str | Path) -> Path:
    """Write the two networks of a checkpoint as one safetensors file (atomically)."""
    networks = dict(zip(PARTS, load_vox256(source), strict=True))
    return save_safetensors(networks, Path(out), "fomm-vox256")


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conversion_command(argv: list[str] | None, module: str, doc: str, official_file: str,
                       convert: Callable[[Path, Path], Path]) -> Path:  # fmt: skip
    """``python -m <module> CHECKPOINT --out X.safetensors``: parse (``doc``'s first paragraph as the description),
    set up logging, ``convert``; a bad checkpoint exits with its error. Returns the file written."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help=official_file)
    parser.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        return convert(args.checkpoint, args.out)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(str(error)) from error


def main(argv: list[str] | None = None) -> None:
    out = conversion_command(argv, "generation.fomm.checkpoint", __doc__, "vox-cpk.pth.tar", convert)
    kp_detector, generator = load_vox256(out)
    logger.info("wrote %s: keypoint detector %s and generator %s parameters", out, f"{_count(kp_detector):,}",
                f"{_count(generator):,}")  # fmt: skip


if __name__ == "__main__":
    main()
