"""Offline replicas of FaceForensics++, Celeb-DF-v2 and DFDC made by the mini, and a collection of one's own in the
build's folders layout: full-frame synthetic videos in each release's exact layout, with fakes made the way each
method works, for the build, the tests and the cross-dataset experiments (``python -m generation.mini --layout
faceforensics|celeb_df|dfdc|folders --output_dir DIR``)."""

from .celeb_df import SIZES as CELEB_DF_SIZES
from .celeb_df import write_celeb_df
from .dfdc import SIZES as DFDC_SIZES
from .dfdc import write_dfdc
from .faceforensics import SIZES as FACEFORENSICS_SIZES
from .faceforensics import write_faceforensics
from .folders import SIZES as FOLDERS_SIZES
from .folders import write_folders
from .manipulations import MANIPULATIONS
from .write import ReplicaSize

__all__ = [
    "CELEB_DF_SIZES",
    "DFDC_SIZES",
    "FACEFORENSICS_SIZES",
    "FOLDERS_SIZES",
    "MANIPULATIONS",
    "ReplicaSize",
    "write_celeb_df",
    "write_dfdc",
    "write_faceforensics",
    "write_folders",
]
