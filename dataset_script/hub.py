"""The Hub form of a built dataset repo, and pushing it.

A local build keeps one file per clip, which suits a disk but not the Hub (tens of thousands of small files). The
Hub form packs each configuration's splits into parquet shards with the videos inside, and a card whose
``configs`` point at them, so ``load_dataset("ORG/NAME", config)`` gives the same configurations and rows.
Per-action configurations repeat clips of the quality configurations; the Hub's chunk-level deduplication
stores repeated bytes once.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from tqdm.auto import tqdm

from .card import ROW_FEATURES

SHARD_BYTES = 500 * 1024**2
HUB_FEATURES = ROW_FEATURES  # the video itself travels in the column


def _read_card(repo: Path) -> tuple[dict, str]:
    text = (repo / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def _write_shards(rows: pa.Table, base: Path, folder: Path, split: str, shard_bytes: int) -> list[str]:
    """Write one split as parquet shards with the video bytes embedded; returns their relative paths."""
    sizes = [(base / name).stat().st_size for name in rows.column("file_name").to_pylist()]
    shards, current, current_size = [], [], 0
    for index, size in enumerate(sizes):
        if current and current_size + size > shard_bytes:
            shards.append(current)
            current, current_size = [], 0
        current.append(index)
        current_size += size
    shards.append(current)
    written = []
    for number, indices in enumerate(shards):
        part = rows.take(indices)
        videos = [{"bytes": (base / name).read_bytes(), "path": Path(name).name}
                  for name in part.column("file_name").to_pylist()]  # fmt: skip
        columns = {"video": videos, **{name: part.column(name) for name in HUB_FEATURES if name != "video"}}
        relative = f"{folder.name}/{split}-{number:05d}-of-{len(shards):05d}.parquet"
        pq.write_table(pa.table(columns, schema=HUB_FEATURES.arrow_schema), folder / Path(relative).name)
        written.append(relative)
    return written


def export_hub_form(repo: Path, out: Path, shard_bytes: int = SHARD_BYTES, progress: bool = True) -> Path:
    """Write the Hub form of the built ``repo`` into ``out`` (data/<config>/<split>-NNNNN-of-NNNNN.parquet)."""
    card, body = _read_card(repo)
    configs = []
    for config in tqdm(card["configs"], desc="packing", unit="config", disable=not progress):
        folder = out / "data" / config["config_name"]
        folder.mkdir(parents=True, exist_ok=True)
        data_files = []
        for entry in config["data_files"]:
            metadata = next(path for path in entry["path"] if path.endswith(".parquet"))
            rows = pq.read_table(repo / metadata)
            _write_shards(rows, (repo / metadata).parent, folder, entry["split"], shard_bytes)
            data_files.append({"split": entry["split"], "path": f"data/{config['config_name']}/{entry['split']}-*"})
        entry = {"config_name": config["config_name"], "data_files": data_files}
        if config.get("default"):
            entry["default"] = True
        configs.append(entry)
    card["configs"] = configs
    header = yaml.safe_dump(card, sort_keys=False, width=200)
    note = (
        "\n> This is the Hub form of the repository: each configuration's splits are parquet shards under "
        "`data/<config>/` with the videos inside. Rows and configurations are those of the local build.\n"
    )
    (out / "README.md").write_text(f"---\n{header}---\n{note}{body}")
    for extra in ("splits.csv", "build_info.json"):
        shutil.copyfile(repo / extra, out / extra)
    return out


def push_to_hub(repo: Path, repo_id: str, private: bool = False, progress: bool = True) -> str:
    """Export the Hub form to a temporary folder and upload it as dataset ``repo_id``; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    with tempfile.TemporaryDirectory(prefix="dfmp-hub-") as scratch:
        folder = export_hub_form(repo, Path(scratch), progress=progress)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder,
                                   commit_message="Upload DeepFake MNIST+ (dataset_script.build)")  # fmt: skip
    print(f"pushed {repo} to the Hub as {repo_id}: {commit.commit_url}")
    return commit.commit_url
