"""The synthetic mini DeepFake MNIST+: procedural talking heads and keypoint-warp animation, offline on a CPU."""

from .generate import SIZES, MiniSize, generate

__all__ = ["SIZES", "MiniSize", "generate"]
