"""The DeepFake MNIST+ layout in the build: a release folder (or a generated one, with ``manifest.csv``) as clips.

The release's folders and manifest are read by ``release``; this module turns them into the build's clips, splits
them (the paper's per-class 70/15/15, and by identity where identities are known), and says what the card says.
"""

from __future__ import annotations

from ..card import CITATION, CardText
from ..clips import BuildConfig, Clip, Problems
from ..probe import probe_videos
from ..release import MANIFEST_NAMES, ManifestRow, ScanReport, SourceVideo, read_manifest_file, scan_release
from ..schema import ACTIONS, DMPLUS_METHOD, LABEL_NAMES, QUALITIES, action_config_name, canonical_action
from ..source_folder import SourceFolder
from ..splits import identity_split, paper_split


def scan(source: SourceFolder, config: BuildConfig, problems: Problems, workers: int) -> list[Clip]:
    """The release's clips, every problem of the folder recorded in ``problems``."""
    report = scan_release(config.source, config.real_folder, source)
    problems.missing_actions += report.missing_actions
    problems.empty_folders += report.empty_folders
    problems.unknown_folders += report.unknown_folders
    problems.bad_files.update({path: "not a video file (by extension)" for path in report.non_video_files})
    manifest_path = next(filter(None, (source.file(config.source / name) for name in MANIFEST_NAMES)), None)
    manifest = read_manifest_file(manifest_path) if manifest_path is not None else None
    return collect_clips(config, report, manifest, problems, workers)


def collect_clips(config: BuildConfig, scan: ScanReport, manifest: dict[str, ManifestRow] | None, problems: Problems,
                  workers: int) -> list[Clip]:  # fmt: skip
    infos, unreadable = probe_videos([video.path for video in scan.videos], workers, config.progress)
    clips, seen_ids = [], {}
    for video in scan.videos:
        if video.path in unreadable:
            problems.bad_files[video.relative] = unreadable[video.path]
            continue
        row = manifest.get(video.relative) if manifest is not None else None
        if manifest is not None and (disagreement := _manifest_disagreement(video, row)):
            problems.bad_files[video.relative] = disagreement
            continue
        video_id = f"{video.folder}/{video.path.stem}"
        if video_id in seen_ids:
            problems.bad_files[video.relative] = f"same name as {seen_ids[video_id]} (video ids come from file names)"
            continue
        seen_ids[video_id] = video.relative
        is_fake = video.action is not None
        # Generated folders may name another animator in the manifest; the release and older manifests are FOMM's.
        method = ((row.method if row else "") or DMPLUS_METHOD) if is_fake else None
        clips.append(
            Clip(
                source=video,
                info=infos[video.path],
                video_id=video_id,
                label=int(is_fake),
                source_id=row.source_id if row else None,
                driving_id=(row.driving_id or None) if row else None,
                method=method,
            )
        )
    if manifest is not None:
        listed = {video.relative for video in scan.videos}
        for missing in sorted(set(manifest) - listed):
            problems.bad_files[missing] = "listed in manifest.csv but not found"
    return clips


def _manifest_disagreement(video: SourceVideo, row: ManifestRow | None) -> str | None:
    """What the manifest's row of ``video`` says against its folder (the folder decides label and action), if
    anything. A real row's action is what the person was filmed doing, no contradiction."""
    if row is None:
        return "not listed in manifest.csv"
    label = LABEL_NAMES[video.action is not None]
    folder = video.relative.split("/")[0]
    if row.label != label:
        return (f"manifest.csv labels it {row.label}, but it is in {folder}/, a folder of {label} clips; fix the "
                "label or move the file")  # fmt: skip
    if video.action is not None and row.action and canonical_action(row.action) != video.action:
        return (f"manifest.csv gives action {row.action}, but it is in {folder}/; fix the action or move the "
                "file")  # fmt: skip
    return None


def assign_splits(clips: list[Clip]) -> bool:
    """Fill in each clip's paper split, and its identity split when every clip has a source identity."""
    by_folder: dict[str, list[Clip]] = {}
    for clip in clips:
        by_folder.setdefault(clip.source.folder, []).append(clip)
    for folder_clips in by_folder.values():
        assignment = paper_split([clip.source.path.name for clip in folder_clips])
        for clip in folder_clips:
            clip.split = assignment[clip.source.path.name]
    if not clips or any(clip.source_id is None for clip in clips):
        return False
    by_identity = identity_split(clip.source_id for clip in clips)
    for clip in clips:
        clip.identity_split = by_identity[clip.source_id]
    return True


def card_text(has_identity: bool) -> CardText:
    example_action = action_config_name(QUALITIES[2], ACTIONS[2])
    source = "a folder generated by this project" if has_identity else "the official release folder"
    identity_text = (
        "Source identities are known for this build, so every configuration also has an identity-disjoint split, "
        "`identity_train`/`identity_validation`/`identity_test`: identities are dealt 70/15/15, so no test "
        "identity (as the face shown, or, for generated data, as the driver) appears in training."
        if has_identity
        else "Source identities are not known for this build (the official release does not record them), so only "
        "the paper split is published."
    )
    return CardText(
        pretty_name="DeepFake MNIST+",
        tags=["deepfake-detection", "facial-animation", "first-order-motion-model"],
        default_config=QUALITIES[0],
        intro=f"""\
DeepFake MNIST+ (Huang et al., ICCVW 2021) is a facial-animation deepfake dataset: fake clips made by animating
one still face with another person's motion (First Order Motion Model) in ten actions ({", ".join(ACTIONS)}),
against real face clips, as 256x256 face crops. This repository was built from: {source}.""",
        usage=f"""\
from datasets import load_dataset
ds = load_dataset("deepfake_mnist_plus", "c23")            # a folder of this name in the working directory
yaw = load_dataset("deepfake_mnist_plus", "{example_action}")    # that action's fakes and as many real clips""",
        configurations="""\
* `raw`, `c23`, `c40`: every clip at that quality. `raw` is the release as shipped; `c23` and `c40` are
  FaceForensics++'s H.264 compression (ffmpeg `libx264 -crf 23` / `-crf 40`, default preset, same fps and size).
* `<quality>-<action>` (30 in all): the fakes of one action plus an equal number of real clips of the same split
  (paper Fig. 5). The real clips of each action are a fixed, seed-free draw made at build time.""",
        clip_folders="the same videos as files (folder = real or an action)",
        disk_note="""\
Each clip is stored once per quality, in its quality's shards, which the per-action
configurations list rather than copy; `--keep_clips` also keeps the clips as files (the `raw` ones as hard links to
the source where the file system allows).""",
        splits=f"""\
The paper uses 70/15/15 per class and says only that the first videos of each class train, the next validate and
the last test. The default split (`train`/`validation`/`test`) does exactly that per folder, sorted by file name.
{identity_text}""",
        built_note="""\
Every input was decoded in full before the build (size and frame count are in the rows). The build writes into a
temporary folder and renames it at the end; compressed clips are reused by reruns.""",
        licence="""\
The official release (github.com/huangjiadidi/DeepFakeMnist) ships no licence file; its real clips come from
VoxCeleb1, whose terms (research use, with attribution) apply. Check both before redistributing. Synthetic data
made by this project's generators carries no third-party content.""",
        citation=CITATION,
    )
