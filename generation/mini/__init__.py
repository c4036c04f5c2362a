"""The synthetic mini DeepFake MNIST+: procedural talking heads filmed as whole frames and cut by the project's face
crop, animated by keypoint warping (or, for an unseen generator, thin-plate splines), offline on a CPU."""

from .filming import MINI_FACE_CROP, released_crop
from .generate import ANIMATORS, SIZES, MiniSize, generate

__all__ = ["ANIMATORS", "MINI_FACE_CROP", "SIZES", "MiniSize", "generate", "released_crop"]
