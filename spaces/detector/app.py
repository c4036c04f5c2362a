"""DeepFake MNIST+ detector Space: is this clip a facial-animation deepfake?

    python spaces/detector/app.py --model demo_output/detector            # what `make demo` serves
    python spaces/detector/app.py --model ORG/detector-a --model ORG/detector-b   # several: a dropdown

``GRADIO_SERVER_PORT`` sets the port; ``DETECTOR_MODEL`` (comma-separated) stands in for ``--model``.

Beside the verdict the page shows what each detector's model card says it was trained on, and calls its output a
probability only when the detector carries a calibration temperature; otherwise it is a score.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script or imported by tests: clip_check sits beside this file
    sys.path.insert(0, str(HERE))

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402
from clip_check import (  # noqa: E402
    DEFAULT_MODEL,
    FRAMINGS,
    MODEL_ENV,
    CheckReport,
    ClipChecker,
    ClipLimits,
    ClipRejected,
    DetectorCard,
)

from dataset_script.console import add_old_spelling, configure_logging  # noqa: E402
from dataset_script.release import FULL_FRAMES_FOLDER  # noqa: E402
from dataset_script.shards import export_clips  # noqa: E402

logger = logging.getLogger("space")
EXAMPLES_DIR = HERE / "examples"
DEMO_DATASET = Path("demo_output/deepfake_mnist_plus")
CONCURRENCY_LIMIT = 2
"""Requests handled at once. The checks themselves run one at a time on the checker's thread (each uses every core,
and torch work on several threads slows all of it: see ClipChecker); a second request's upload and a first one's
gallery encoding overlap the running check."""
QUEUE_POLL_SECONDS = 0.01
"""How often the idle queue looks for a new request. Gradio's default on Linux, 1 ms, wakes the server a thousand
times a second, and on 2 cores each wake takes a core from a running check's threads: beside a thread that only
sleeps 1 ms at a time a check took 8 % longer, at 10 ms no longer; an idle server used a tenth of a core, now a
thirtieth. A request waits at most 10 ms more to start."""


def score_name(report: CheckReport) -> str:
    """What the page calls the detector's output: a probability only when a fitted temperature calibrates it."""
    return "fake probability" if report.calibrated else "fake score"


def verdict_label(report: CheckReport) -> dict[str, float] | str:
    """gr.Label's value: class confidences when they are calibrated probabilities, else the verdict alone, so the
    page draws no confidence bars for numbers that are not probabilities."""
    if report.calibrated:
        return {"fake": report.fake_score, "real": 1.0 - report.fake_score}
    return report.verdict


def verdict_text(report: CheckReport, card: DetectorCard) -> str:
    """The verdict in words, how far to trust the number, and the detector's provenance."""
    if report.calibrated:
        number = (f"**{report.verdict}**: fake probability {report.fake_score:.2f}, the mean of the frames' "
                  "calibrated probabilities")  # fmt: skip
    else:
        number = (f"**{report.verdict}**: fake score {report.fake_score:.2f} (0 to 1, 0.5 the threshold). A score, "
                  "not a probability: this detector has no calibration temperature")  # fmt: skip
    if report.frames_missing:
        number += f".\n\n**{missing_frames(report)}**"
    return number + "\n\n" + card.provenance()


def missing_frames(report: CheckReport) -> str:
    """What a damaged clip lost, in a sentence; empty when every frame asked for decoded."""
    if not report.frames_missing:
        return ""
    missing, asked = len(report.frames_missing), report.frames_asked
    return (f"{missing} of the {asked} frames asked for could not be decoded (the file is damaged or truncated): the "
            f"verdict rests on the other {asked - missing}")  # fmt: skip


def score_plot(report: CheckReport) -> gr.LinePlot:
    """Each frame's score with the 0.5 threshold, as data the browser draws (a matplotlib image cost a tenth of a
    request to render and encode on the server)."""
    indices = [frame.index for frame in report.frames]
    series = [f"per-frame {score_name(report)}"] * len(indices) + ["threshold 0.5"] * 2
    points = pd.DataFrame({"frame": indices + [min(indices), max(indices)],
                           "score": [frame.fake_score for frame in report.frames] + [0.5, 0.5],
                           "series": series})  # fmt: skip
    title = f"mean {score_name(report)} {report.fake_score:.2f} over {len(indices)} frames"
    return gr.LinePlot(points, x="frame", y="score", color="series", y_lim=[0, 1], y_title=score_name(report),
                       title=title)  # fmt: skip


def gallery(report: CheckReport) -> list[tuple]:
    items = []
    for frame in report.frames:
        if frame.cam is not None:
            caption = f"frame {frame.index}: {score_name(report)} {frame.fake_score:.2f}"
            items += [(frame.crop, caption), (frame.cam, f"{caption} (CAM)")]
    return items


FRAMING_NAMES = {"crop": "scored as a face crop", "whole_frame": "face cut out of whole frames"}


def details(report: CheckReport) -> str:
    metadata = report.metadata
    lines = [
        f"**Model:** `{report.model}`",
        f"**Video:** {metadata.width}x{metadata.height}, {metadata.duration:.1f} s, {metadata.codec} "
        f"({metadata.pixel_format})"
        if metadata
        else "",
        f"**Framing:** {FRAMING_NAMES[report.framing]}, {report.framing_reason}",
        f"**Frames used:** {len(report.frames)} ({', '.join(str(frame.index) for frame in report.frames)})",
        f"**Frames without a face:** {len(report.frames_without_face)}"
        + (f" ({', '.join(map(str, report.frames_without_face))})" if report.frames_without_face else ""),
    ]
    if report.frames_with_several_faces:
        lines.append(f"**Frames left out, several faces and no main one:** {len(report.frames_with_several_faces)}")
    if report.frames_missing:
        lines.append(f"**Frames missing:** {', '.join(map(str, report.frames_missing))}: {missing_frames(report)}")
    lines.append("**Time:** " + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in report.seconds.items()))
    return "\n\n".join(line for line in lines if line)


def build_app(checker: ClipChecker, examples: list[str], gallery_format: str = "jpeg") -> gr.Blocks:
    """The page; ``gallery_format`` is how crops and CAMs are sent (JPEG encodes several times faster than Gradio's
    default WebP; ``benchmarks.space_latency`` compares)."""

    def predict(video: str | None, framing: str = "auto", model: str | None = None):
        try:
            report = checker.check(video, framing=framing or "auto", model=model)
        except ClipRejected as error:
            raise gr.Error(str(error), title="Cannot check this clip") from error
        except Exception as error:  # a bug of ours must not take the server down, nor hide from the log
            logger.exception("checking %s failed", video)
            raise gr.Error(f"checking the clip failed unexpectedly ({type(error).__name__}); the server keeps "
                           "running, try another clip") from error  # fmt: skip
        card = checker.cards[report.model]
        return verdict_label(report), verdict_text(report, card), score_plot(report), gallery(report), details(report)

    with gr.Blocks(title="DeepFake MNIST+ detector", delete_cache=(600, 3600)) as app:
        gr.Markdown(
            "# DeepFake MNIST+ detector\nUpload a short clip of a face. The Space takes 32 evenly spaced frames, "
            "crops the largest face in each with MTCNN, scores every crop with the detector and averages the "
            "scores into a verdict. Class activation maps show where the detector looked. Next to the verdict: "
            "what the detector was trained on, and whether its number is a calibrated probability."
        )
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="clip", sources=["upload"], format=None)
                framing = gr.Radio(
                    list(FRAMINGS), value="auto", label="framing",
                    info="auto: a clip already cropped as the detector's training clips were is scored as it is, "
                         "any other has its face cut out the same way; 'crop' and 'whole_frame' override that",
                )  # fmt: skip
                inputs = [video, framing]
                choice = None
                if len(checker.model_names) > 1:
                    choice = gr.Dropdown(checker.model_names, value=checker.model_names[0], label="detector")
                    inputs.append(choice)
                button = gr.Button("Check", variant="primary")
                if examples:
                    gr.Examples([[path, "auto"] for path in examples], inputs=[video, framing],
                                label="examples from the synthetic mini: released face crops, and whole-frame "
                                      "originals they were cut from")  # fmt: skip
            with gr.Column():
                verdict = gr.Label(label="verdict", num_top_classes=2)
                # before any check too: what the detector learnt from matters before trusting what it says
                about = gr.Markdown(checker.cards[checker.model_names[0]].provenance(), label="about the verdict")
                plot = gr.LinePlot(label="fake score per frame", x="frame", y="score", color="series")
        crops = gr.Gallery(label="face crops and class activation maps", columns=4, height="auto",
                           format=gallery_format)  # fmt: skip
        info = gr.Markdown(label="details")
        button.click(predict, inputs=inputs, outputs=[verdict, about, plot, crops, info], api_name="predict",
                     concurrency_limit=CONCURRENCY_LIMIT)  # fmt: skip
        if choice is not None:
            choice.change(lambda name: checker.cards[name].provenance(), inputs=choice, outputs=about,
                          api_visibility="private")  # fmt: skip
    app.queue(max_size=32)
    poll_less(app)
    return app


def poll_less(app: gr.Blocks) -> None:
    """The queue's idle polling at ``QUEUE_POLL_SECONDS`` (Gradio has no public setting for it)."""
    queue = app._queue
    if hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_POLL_SECONDS)
    else:  # a Gradio that renamed it: the Space works as before, its idle server only busier
        logger.warning("Gradio's queue has no sleep_when_free; it polls for requests at its own rate")


def find_examples(folder: Path, per_class: int = 2) -> list[str]:
    """The .mp4 clips of ``folder``; for a built dataset repo (``make demo``'s), a few raw test clips of each class.

    Test clips of the identity-disjoint split where the build made one, else of the paper's split: ``splits.csv``
    always has an ``identity_split`` column, empty in builds without known identities.
    """
    if (folder / "splits.csv").is_file():
        import csv

        with (folder / "splits.csv").open() as file:
            rows = list(csv.DictReader(file))
        column = "identity_split" if any(row.get("identity_split") for row in rows) else "split"
        rows = [row for row in rows if row[column] == "test"]
        chosen, copies = [], _examples_folder()
        for label in ("fake", "real"):
            # a few spare names for clips the repo lacks; each found one is the repo's clip file where it kept them
            # (--keep_clips), else a copy out of its shards
            names = [f"raw/{row['video_id']}.mp4" for row in rows if row["label"] == label][: 4 * per_class]
            chosen += [str(path) for path in export_clips(folder, names, copies).values()][:per_class]
        # the whole-frame originals the mini's real test clips were cut from: the Space cuts them the same way
        originals = _source(folder) / FULL_FRAMES_FOLDER
        paths = [originals / row["source_file"] for row in rows if row["label"] == "real" and row.get("source_file")]
        return chosen + [str(path) for path in paths if path.is_file()][:per_class]
    return sorted(str(path) for path in folder.glob("*.mp4")) if folder.is_dir() else []


def _examples_folder() -> Path:
    """A folder of this process's own for example clips read out of a repo's shards, removed when it exits."""
    folder = Path(tempfile.mkdtemp(prefix="dmplus-space-examples-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _source(repo: Path) -> Path:
    """The folder a built dataset repo was built from, as its build_info.json records it."""
    try:
        return Path(json.loads((repo / "build_info.json").read_text())["config"]["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return repo / "no recorded source"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append",
                        help=f"a saved detector folder or Hub id; repeat for a dropdown (default: ${MODEL_ENV}, "
                             f"comma-separated, or {DEFAULT_MODEL})")  # fmt: skip
    parser.add_argument("--examples", type=Path, default=EXAMPLES_DIR if EXAMPLES_DIR.is_dir() else DEMO_DATASET,
                        help="a folder of example .mp4 clips, or a built dataset repo to take test clips "
                             "from")  # fmt: skip
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--max_file_mb", type=float, default=ClipLimits.max_megabytes,
                        help="the largest upload accepted, in MB")  # fmt: skip
    add_old_spelling(parser, "--max-file-mb", "--max_file_mb")
    args = parser.parse_args(argv)
    configure_logging()
    models = args.model or [m.strip() for m in os.environ.get(MODEL_ENV, DEFAULT_MODEL).split(",") if m.strip()]
    checker = ClipChecker(models, ClipLimits(max_megabytes=args.max_file_mb))
    examples = find_examples(args.examples)
    app = build_app(checker, examples)
    port = int(os.environ.get("GRADIO_SERVER_PORT", 7860))
    app.launch(server_name=args.host, server_port=port, max_file_size=f"{args.max_file_mb:g}mb",
               allowed_paths=sorted({str(Path(path).resolve().parent) for path in examples}) or None,
               show_error=True)  # fmt: skip


if __name__ == "__main__":
    main()
