"""Frame sampling throughput: our sampler against the bare decoder call on the same frames, in one run.

32 evenly spaced frames per clip over >= 100 clips, single-threaded decoding. The ratio is our throughput over
the bare decoder's (target >= 0.9: the sampler must add almost nothing to decoding).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from dataset_script.frames import FrameSampler, VideoFrames, evenly_spaced_indices

from .common import make_clips, timed


def bare_torchcodec(paths, indices):
    from torchcodec.decoders import VideoDecoder

    for path in paths:
        VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=1).get_frames_at(indices)


def bare_decord(paths, indices):
    import decord

    for path in paths:
        decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1).get_batch(indices)


def ours(paths, decoder):
    for path in paths:
        video = VideoFrames(str(path), decoder)
        video.read(evenly_spaced_indices(video.num_frames, 32))


def ours_normalised(paths, decoder):
    sampler = FrameSampler({"input_size": (3, 256, 256)}, frames_per_video=32, decoder=decoder)
    for path in paths:
        sampler.sample(str(path))


def main(clip_folder: Path | None = None) -> None:
    torch.set_num_threads(1)
    folder = clip_folder or Path(tempfile.gettempdir()) / "dfmp-bench-clips"
    paths = make_clips(folder, count=120, frames=48)
    indices = evenly_spaced_indices(48, 32).tolist()
    print(f"frame sampling: {len(paths)} clips x 32 of 48 frames, 256x256, one decoding thread")
    for decoder, bare in (("torchcodec", bare_torchcodec), ("decord", bare_decord)):
        bare_time = timed(lambda bare=bare: bare(paths, indices))
        our_time = timed(lambda decoder=decoder: ours(paths, decoder))
        normalised = timed(lambda decoder=decoder: ours_normalised(paths, decoder), repeats=1)
        frames = len(paths) * 32
        print(f"  {decoder:<10} bare {frames / bare_time:7.0f} frames/s | ours {frames / our_time:7.0f} frames/s "
              f"| ratio {bare_time / our_time:.2f} (target >= 0.90) | with resize+normalise "
              f"{frames / normalised:6.0f} frames/s")  # fmt: skip


if __name__ == "__main__":
    main()
