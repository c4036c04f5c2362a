"""Pushing a built dataset repo to the Hub.

A built repo already keeps its rows in the Hub's form: each configuration's splits as parquet shards with the videos
inside, under ``data/`` (``shards`` writes them, for the local build and the Hub alike). The Hub form is that folder
less its per-clip video files, which suit a disk but not the Hub (tens of thousands of small files): the card,
``splits.csv``, ``build_info.json`` and ``data/``. Per-action configurations repeat clips of the quality
configurations; the Hub's chunk-level deduplication stores repeated bytes once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from .shards import DATA_FOLDER

logger = logging.getLogger(__name__)

HUB_FILES = ("README.md", "splits.csv", "build_info.json", f"{DATA_FOLDER}/*")
"""What of a built repo goes to the Hub (patterns, as ``upload_folder`` takes them)."""


def read_card_header(repo: Path) -> dict:
    text = (repo / "README.md").read_text()
    _, header, _ = text.split("---\n", 2)
    return yaml.safe_load(header)


def check_hub_form(repo: Path) -> None:
    """Raise ValueError, saying how to fix it, unless every split of ``repo``'s card reads parquet shards only."""
    if not (repo / "README.md").is_file():
        raise ValueError(f"{repo} has no README.md: not a dataset repo built by python -m dataset_script.build")
    stale = []
    for config in read_card_header(repo).get("configs", []):
        for entry in config["data_files"]:
            patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            if any(not pattern.startswith(f"{DATA_FOLDER}/") for pattern in patterns):
                stale.append(f"{config['config_name']}/{entry['split']}")
            elif not any(any(repo.glob(pattern)) for pattern in patterns):
                raise ValueError(f"{repo}: {config['config_name']}/{entry['split']} has no files ({patterns}); "
                                 "rebuild it with python -m dataset_script.build")  # fmt: skip
    if stale:
        raise ValueError(
            f"{repo} was built before rows carried their videos ({len(stale)} splits, e.g. {stale[0]}, read video "
            "files beside a metadata file); rebuild it with python -m dataset_script.build SOURCE --out "
            f"{repo} (earlier encodes are reused) and push again"
        )


def licensed_per_user(repo: Path) -> bool:
    """Whether the built ``repo`` holds data licensed to each user (FaceForensics++, Celeb-DF-v2, DFDC, a collection
    of one's own), per its build."""
    info = repo / "build_info.json"
    return info.is_file() and bool(json.loads(info.read_text()).get("licensed_per_user"))


def push_to_hub(repo: Path, repo_id: str, private: bool | None = None) -> str:
    """Upload the Hub form of the built ``repo`` as dataset ``repo_id``; returns the commit URL.

    ``private`` None: private for data licensed to each user, whose terms forbid redistribution; public otherwise.

    Shards on the Hub that this build did not write are deleted in the same upload: the card's split patterns
    would match them too, and a split would gain the rows of an earlier push."""
    from huggingface_hub import HfApi

    check_hub_form(repo)
    if private is None:
        private = licensed_per_user(repo)
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=repo, allow_patterns=list(HUB_FILES),
                               delete_patterns=[f"{DATA_FOLDER}/*"],
                               commit_message="Upload DeepFake MNIST+ (dataset_script.build)")  # fmt: skip
    logger.info("pushed %s to the Hub as %s: %s", repo, repo_id, commit.commit_url)
    return commit.commit_url
