"""The Space's latency: seconds from upload to verdict for a 10-second 256x256 clip through gradio_client, split
into decode, face crop, model and CAM as the app reports them, against the sum of the same stages called bare
(metadata and frame decoding, MTCNN plus cropping, the detector's forward) in one run; then 8 concurrent requests.

python -m benchmarks.space_latency [--model DIR] [--requests 8]

Without --model it serves demo_output/detector when `make demo` has trained it, else an untrained detector of the
same kind (latency does not depend on the weights).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from dataset_script.faces import FaceDetector, crop_face
from dataset_script.frames import VideoFrames, evenly_spaced_indices, normalise_frames
from dataset_script.probe import read_metadata
from modeling import create_detector, detector, save_detector, timm_model_of

from .training_throughput import default_dataset

SPACE = Path(__file__).resolve().parents[1] / "spaces" / "detector"


def ten_second_clip(dataset: Path, out: Path) -> Path:
    """A real mini clip looped to 10 s (250 frames at 25 fps), 256x256, H.264 at the encoder's defaults."""
    source = next((dataset / "raw" / "real").glob("*.mp4"))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(source), "-t", "10",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)], check=True)  # fmt: skip
    return out


def bare_stages(clip: Path, model_dir: str, repeats: int = 3) -> dict[str, float]:
    """The best of ``repeats`` runs of each stage called directly."""
    model, info = detector(model_dir)
    inner = timm_model_of(model).eval()
    cfg = info.pretrained_cfg(inner)
    faces = FaceDetector()
    best = {"decode": float("inf"), "face crop": float("inf"), "model": float("inf")}
    for _ in range(repeats):
        started = time.perf_counter()
        read_metadata(clip)
        video = VideoFrames(str(clip))
        frames = video.read(evenly_spaced_indices(video.num_frames))
        decoded = time.perf_counter()
        found = faces.detect(frames)
        crops = torch.stack([crop_face(frame, faces[0].box) for frame, faces in zip(frames, found, strict=True)])
        cropped = time.perf_counter()
        with torch.inference_mode():
            inner(normalise_frames(crops, cfg)).softmax(-1)
        scored = time.perf_counter()
        for stage, seconds in zip(best, (decoded - started, cropped - decoded, scored - cropped), strict=True):
            best[stage] = min(best[stage], seconds)
    return best


def app_stages(details: str) -> dict[str, float]:
    timing = details.split("**Time:**", 1)[1]
    return {stage.strip(): float(seconds) for stage, seconds in re.findall(r"([A-Za-z ]+) ([0-9.]+) s", timing)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model")
    parser.add_argument("--requests", type=int, default=8)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(SPACE))
    from app import build_app
    from clip_check import ClipChecker
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="dfmp-bench-space-") as work:
        work = Path(work)
        model_dir = args.model
        if model_dir is None:
            demo = Path("demo_output/detector")
            if (demo / "config.json").exists():
                model_dir = str(demo)
            else:
                model, info = create_detector("mesoinception4_hp", pretrained=False, input_size=128, crop_pct=0.5)
                model_dir = str(save_detector(model, info, work / "detector"))
        clip = ten_second_clip(default_dataset(work), work / "ten_seconds.mp4")
        bare = bare_stages(clip, model_dir)
        app = build_app(ClipChecker([model_dir]), [])
        _, url, _ = app.launch(prevent_thread_lock=True, quiet=True)
        try:
            client = Client(url, verbose=False)
            client.predict(handle_file(str(clip)), False, api_name="/predict")  # warm-up: MTCNN loads here
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                *_, details = client.predict(handle_file(str(clip)), False, api_name="/predict")
                runs.append((time.perf_counter() - started, app_stages(details)))
            total, stages = min(runs, key=lambda run: run[0])
            bare_sum = sum(bare.values())
            print(f"Space latency, 10 s 256x256 clip ({torch.get_num_threads()} threads), model {model_dir}")
            print(f"  upload to verdict {total:.2f} s: {_stages(stages)}")
            print(f"  bare stages sum   {bare_sum:.2f} s: {_stages(bare)}")
            print(f"  ratio bare / Space {bare_sum / total:.2f} (CAM, plot, gallery encoding, upload and queue are "
                  "the difference)")  # fmt: skip

            def one_request(_: int) -> float:
                started = time.perf_counter()
                Client(url, verbose=False).predict(handle_file(str(clip)), False, api_name="/predict")
                return time.perf_counter() - started

            with ThreadPoolExecutor(args.requests) as pool:
                results = list(pool.map(lambda i: _attempt(one_request, i), range(args.requests)))
            latencies = [r for r in results if isinstance(r, float)]
            errors = [r for r in results if not isinstance(r, float)]
            print(f"  {args.requests} concurrent requests: {len(latencies)} served, {len(errors)} errors; latency "
                  f"median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s")  # fmt: skip
            for error in errors:
                print(f"    error: {error}")
        finally:
            app.close()


def _stages(seconds: dict[str, float]) -> str:
    return ", ".join(f"{stage} {value:.2f} s" for stage, value in seconds.items())


def _attempt(function, argument):
    try:
        return function(argument)
    except Exception as error:  # reported, not raised: the count of failures is the measurement
        return f"{type(error).__name__}: {error}"


if __name__ == "__main__":
    main()
