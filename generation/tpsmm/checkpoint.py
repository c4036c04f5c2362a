"""Building TPSMM vox-256 and loading the official checkpoint into it, strictly and without unpickling code.

    python -m generation.tpsmm.checkpoint vox.pth.tar --out tpsmm-vox256.safetensors   # convert once

``load_tpsmm`` takes either the official ``vox.pth.tar`` (read with ``torch.load(weights_only=True)``) or the
converted ``.safetensors`` (keys prefixed by the entry names, ``kp_detector.`` ...). As the project's demo, it reads
``kp_detector``, ``dense_motion_network`` and ``inpainting_network``, and ``avd_network`` when the file has one;
``bg_predictor`` (used in training only), the optimizers and the epoch are left unread.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from generation.fomm.checkpoint import (
    batch_norm_calibration,
    conversion_command,
    load_strictly,
    read_state_dicts,
    save_safetensors,
)

from .avd import AvdNetwork
from .dense_motion import DenseMotionNetwork
from .inpainting import InpaintingNetwork
from .keypoint_detector import KeypointDetector

logger = logging.getLogger("generation.tpsmm.checkpoint")  # not __name__: run with -m, that is __main__

VOX256 = {
    "common": {"num_tps": 10, "num_channels": 3},
    "generator": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 3},
    "dense_motion": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5, "scale_factor": 0.25},
    "avd_network": {"id_bottle_size": 128, "pose_bottle_size": 128},
}  # fmt: skip
"""config/vox-256.yaml of the Thin-Plate-Spline-Motion-Model repository (``bg`` and ``multi_mask`` on; the
background predictor is training only, the four occlusion masks are built in)."""

PARTS = ("kp_detector", "dense_motion_network", "inpainting_network")
OPTIONAL_PARTS = ("avd_network",)
OFFICIAL_FILE = "TPSMM's vox.pth.tar"


class TPSMM(nn.Module):
    """The networks TPSMM animates with, named as the checkpoint's entries; ``avd_network`` is None when the
    checkpoint has none (then only the ``relative`` and ``standard`` modes work)."""

    def __init__(self, with_avd: bool = True, config: dict = VOX256):
        super().__init__()
        common = config["common"]
        self.kp_detector = KeypointDetector(common["num_tps"])
        self.dense_motion_network = DenseMotionNetwork(**common, **config["dense_motion"])
        self.inpainting_network = InpaintingNetwork(common["num_channels"], **config["generator"])
        self.avd_network = AvdNetwork(common["num_tps"], **config["avd_network"]) if with_avd else None

    def parts(self) -> dict[str, nn.Module]:
        return {name: module for name, module in self.named_children()}


def build_vox256(with_avd: bool = True) -> TPSMM:
    """TPSMM vox-256 with fresh weights, in eval mode."""
    return TPSMM(with_avd).eval()


def calibrate_batch_norm(networks: TPSMM, size: int = 128, batches: int = 2, seed: int = 0) -> None:
    """Give fresh networks the batch-norm statistics of a few random frames (the keypoint detector's ResNet and
    the AVD network have batch norm; the rest instance norm). With fresh statistics a random ResNet's outputs grow
    layer by layer and its keypoints saturate at the frame's corners, where every frame's motion is the same."""
    generator = torch.Generator().manual_seed(seed)
    modules = [module for module in (networks.kp_detector, networks.avd_network) if module is not None]
    with batch_norm_calibration(*modules):
        for _ in range(batches):
            keypoints = networks.kp_detector(torch.rand(4, 3, size, size, generator=generator))
            if networks.avd_network is not None:
                networks.avd_network({"fg_kp": keypoints["fg_kp"].flip(0)}, keypoints)


def load_tpsmm(path: str | Path, device: str | torch.device = "cpu") -> TPSMM:
    """The official vox-256 checkpoint (or its safetensors conversion) loaded strictly, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint; download vox.pth.tar from the Thin-Plate-Spline-Motion-"
                                "Model project's pre-trained model links")  # fmt: skip
    state_dicts = read_state_dicts(path, PARTS, "TPSMM", OFFICIAL_FILE, OPTIONAL_PARTS)
    with torch.device("meta"):  # no random initialisation of what the checkpoint replaces (seconds on a CPU)
        networks = TPSMM(with_avd="avd_network" in state_dicts)
    load_strictly(path, networks.parts(), state_dicts, "TPSMM vox-256", assign=True)
    return networks.to(device).eval()


def convert(source: str | Path, out: str | Path) -> Path:
    """Write the networks of a checkpoint as one safetensors file (atomically)."""
    return save_safetensors(load_tpsmm(source).parts(), Path(out), "tpsmm-vox256")


def main(argv: list[str] | None = None) -> None:
    out = conversion_command(argv, "generation.tpsmm.checkpoint", __doc__, "vox.pth.tar", convert)
    counts = [f"{name} {sum(p.numel() for p in part.parameters()):,}" for name, part in load_tpsmm(out).parts().items()]
    logger.info("wrote %s: parameters %s", out, ", ".join(counts))


if __name__ == "__main__":
    main()
