"""--push_to_hub against a local stand-in for the Hub API: the same configs come back through load_dataset."""

import shutil
import subprocess
import sys

import pytest
from datasets import get_dataset_config_names, load_dataset

from tests.hub_stand_in import StandIn


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with StandIn() as stand_in:
        monkeypatch.setenv("HF_ENDPOINT", stand_in.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
        monkeypatch.setenv("HF_TOKEN", "hf_stand_in_token")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
        monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets_cache"))
        yield stand_in


@pytest.mark.slow
def test_push_to_hub_round_trip(hub, tmp_path, small_release, built_repo):
    out = tmp_path / "deepfake_mnist_plus"
    # a copy of the session's build of the same release: the build below reuses its encodes (it would make the very
    # same files) and does all the rest, the push included, itself
    shutil.copytree(built_repo, out)
    stale = "data/raw/train-00001-of-00002.parquet"  # an earlier push's shard: the split pattern would match it
    hub.repos["datasets/lab/deepfake_mnist_plus"] = {stale: b"not this build's rows"}
    hub.commits["datasets/lab/deepfake_mnist_plus"] = "1" * 40
    command = [sys.executable, "-m", "dataset_script.build", str(small_release), "--output_dir", str(out),
               "--qualities", "raw,c40", "--push_to_hub", "lab/deepfake_mnist_plus", "--no_progress"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    stored = hub.repos["datasets/lab/deepfake_mnist_plus"]
    assert "README.md" in stored and not any(name.endswith(".mp4") for name in stored)  # sharded, not one per clip
    assert sum(name.endswith(".parquet") for name in stored) == 22 * 3  # 22 configs x 3 splits
    local_shards = {path.relative_to(out).as_posix() for path in (out / "data").rglob("*.parquet")}
    assert {name for name in stored if name.endswith(".parquet")} == local_shards  # the build's own shards
    assert stale not in stored
    code = (
        "import json, sys\n"
        "from datasets import get_dataset_config_names, load_dataset\n"
        "names = get_dataset_config_names('lab/deepfake_mnist_plus')\n"
        "rows = {n: {s: sorted(d['video_id']) for s, d in load_dataset('lab/deepfake_mnist_plus', n).items()}"
        " for n in ('raw', 'c40-yaw')}\n"
        "ds = load_dataset('lab/deepfake_mnist_plus', 'c40', split='test')\n"
        "frames = ds[0]['video'].get_frames_at([0]).data\n"
        "print(json.dumps({'names': names, 'rows': rows, 'shape': list(frames.shape),"
        " 'labels': ds.features['label'].names}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    remote = json.loads(result.stdout.strip().splitlines()[-1])
    local_names = get_dataset_config_names(str(out))
    assert sorted(remote["names"]) == sorted(local_names)
    for name in ("raw", "c40-yaw"):
        local = {split: sorted(d["video_id"]) for split, d in load_dataset(str(out), name).items()}
        assert remote["rows"][name] == local
    assert remote["shape"] == [1, 3, 64, 64] and remote["labels"] == ["real", "fake"]
