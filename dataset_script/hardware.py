"""What this machine's CPU computes natively, read once from its flags.

It lives here, at the bottom of the import graph, because both the animators (``generation.precision``) and training
(``training.arguments``) choose bf16 by it, and neither may import the other.
"""

from __future__ import annotations

import functools
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""/proc/cpuinfo flags of CPUs that compute in bf16 natively."""


def cpu_flags() -> list[str]:
    """The first processor's flags in /proc/cpuinfo; none where there is no such file (not Linux)."""
    try:
        text = CPUINFO.read_text()
    except OSError:  # no way to tell, so nothing is claimed
        return []
    return next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this machine's CPU computes in bf16 natively (AVX-512 BF16 or AMX). Elsewhere bf16 is emulated,
    slower than fp32."""
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)
