"""Checks a generated fake must pass to enter the release, in a registry. They stand in for the paper's filter
(a commercial liveness API the authors ran on every fake); a fake that fails one is recorded as rejected, with
the check's score and reason, and its video kept aside, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dataset_script.faces import FaceDetector


@dataclass
class CheckResult:
    passed: bool
    score: float
    reason: str


@dataclass
class CheckContext:
    detector: FaceDetector
    min_face_fraction: float = 0.9


Check = Callable[[torch.Tensor, CheckContext], CheckResult]
CHECKS: dict[str, Check] = {}


def register_check(name: str):
    def register(check: Check) -> Check:
        CHECKS[name] = check
        return check

    return register


@register_check("face_presence")
def face_presence(frames: torch.Tensor, context: CheckContext) -> CheckResult:
    """A face in at least ``min_face_fraction`` of the frames (uint8, (T, 3, H, W)): animation that broke the face
    apart, or moved it out of the crop, fails."""
    found = sum(bool(faces) for faces in context.detector.detect(frames))
    fraction = found / max(1, len(frames))
    passed = fraction >= context.min_face_fraction
    return CheckResult(passed, fraction, f"a face in {found} of {len(frames)} frames ({fraction:.0%}; "
                                         f"at least {context.min_face_fraction:.0%} needed)")  # fmt: skip


def validate_checks(names: list[str]) -> None:
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(sorted(CHECKS))}")


def run_checks(names: list[str], frames: torch.Tensor, context: CheckContext) -> dict[str, CheckResult]:
    validate_checks(names)
    return {name: CHECKS[name](frames, context) for name in names}
