"""Offline replicas of FaceForensics++ and Celeb-DF-v2 made by the mini: full-frame synthetic videos in each
release's exact layout, with fakes made the way each method works, for the build, the tests and the
cross-dataset experiments (``python -m generation.mini --layout faceforensics|celeb_df --out DIR``)."""

from .celeb_df import SIZES as CELEB_DF_SIZES
from .celeb_df import write_celeb_df
from .faceforensics import SIZES as FACEFORENSICS_SIZES
from .faceforensics import write_faceforensics
from .manipulations import MANIPULATIONS
from .write import ReplicaSize

__all__ = [
    "CELEB_DF_SIZES",
    "FACEFORENSICS_SIZES",
    "MANIPULATIONS",
    "ReplicaSize",
    "write_celeb_df",
    "write_faceforensics",
]
