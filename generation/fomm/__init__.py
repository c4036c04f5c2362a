"""Our First Order Motion Model (Siarohin et al. 2020), vox-256 configuration, loadable from the official
checkpoint ``vox-cpk.pth.tar`` (its ``kp_detector`` and ``generator`` entries, strictly)."""

from .animate import AnimationOptions, animate, best_reference_frame
from .checkpoint import VOX256, build_vox256, load_vox256
from .dense_motion import DenseMotionNetwork
from .generator import OcclusionAwareGenerator
from .keypoint_detector import KeypointDetector

__all__ = ["VOX256", "AnimationOptions", "DenseMotionNetwork", "KeypointDetector", "OcclusionAwareGenerator",
           "animate", "best_reference_frame", "build_vox256", "load_vox256"]  # fmt: skip
