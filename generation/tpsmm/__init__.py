"""Our Thin-Plate Spline Motion Model (Zhao and Zhang 2022), vox-256 configuration, loadable from the official
checkpoint ``vox.pth.tar`` (its ``kp_detector``, ``dense_motion_network``, ``inpainting_network`` and, when present,
``avd_network`` entries, strictly). Its blocks are FOMM's (``generation.fomm.blocks``) with instance norm, its
motion math lives in ``generation.motion``."""

from .animate import MODES, AnimationOptions, animate, check_mode
from .avd import AvdNetwork
from .checkpoint import TPSMM, VOX256, build_vox256, load_tpsmm
from .dense_motion import DenseMotionNetwork
from .inpainting import InpaintingNetwork
from .keypoint_detector import KeypointDetector

__all__ = ["MODES", "TPSMM", "VOX256", "AnimationOptions", "AvdNetwork", "DenseMotionNetwork", "InpaintingNetwork",
           "KeypointDetector", "animate", "build_vox256", "check_mode", "load_tpsmm"]  # fmt: skip
