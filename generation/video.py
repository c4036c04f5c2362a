"""Writing generated clips: near-lossless H.264 mp4, atomically, with the same bytes on every machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dataset_script.files import atomic_path

RAW_CRF = 12  # near-lossless: compression in the dataset build stays the only real degradation


def write_video(frames: np.ndarray, target: Path, fps: float = 25, crf: int = RAW_CRF) -> None:
    """Write uint8 frames (T, H, W, 3) as an H.264 mp4 (libx264 in-process via PyAV), atomically: a reader never
    sees a half-written file, and a process killed mid-write leaves only a hidden partial file behind."""
    import av

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"expected uint8 frames shaped (T, H, W, 3) with T > 0, got {frames.shape} {frames.dtype}")
    rate = round(fps) if abs(fps - round(fps)) < 1e-3 else _fraction(fps)
    # PyAV picks the container by the name, so the hidden partial name ends in .mp4 whatever the target's does.
    with (
        atomic_path(target, suffix=".mp4") as partial,
        av.open(str(partial), "w", options={"fflags": "+bitexact"}) as container,
    ):
        stream = container.add_stream("libx264", rate=rate)
        # yuv420p needs even sides: face crops are 256, but other frames given here may have odd sides.
        stream.width, stream.height = frames.shape[2] // 2 * 2, frames.shape[1] // 2 * 2
        stream.pix_fmt = "yuv420p"
        # One thread, so the bytes are the same on every machine; `bitexact` keeps version strings out.
        stream.options = {"crf": str(crf), "preset": "superfast", "threads": "1", "flags": "+bitexact"}
        for frame in frames[:, : stream.height, : stream.width]:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


def _fraction(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)
