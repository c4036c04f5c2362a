from collections import Counter

import pytest

from dataset_script.schema import (
    ACTIONS,
    FAKE,
    LABEL_NAMES,
    RELEASE_FOLDER_TO_ACTION,
    all_config_names,
    canonical_action,
)
from dataset_script.splits import identity_split, paper_split, split_sizes


def test_labels_follow_faceforensics_convention():
    assert LABEL_NAMES.index("real") == 0 and LABEL_NAMES.index("fake") == 1


def test_detectors_label_and_score_their_outputs_as_the_schema_does():
    import torch

    from modeling import FAKE_CLASS, LABELS, fake_probability  # modeling may not import the schema: tied here

    assert LABELS == LABEL_NAMES and FAKE_CLASS == FAKE
    probability = fake_probability(torch.tensor([[0.0, 0.0], [1.0, 3.0]], dtype=torch.bfloat16))
    assert probability.dtype == torch.float32 and torch.allclose(probability, torch.sigmoid(torch.tensor([0.0, 2.0])))


def test_release_folders_map_onto_every_action_once():
    assert sorted(RELEASE_FOLDER_TO_ACTION.values()) == sorted(ACTIONS)
    assert canonical_action("surpise") == "surprise"
    assert canonical_action("up") == "look_up"
    assert canonical_action("mouth") == "open_mouth"
    assert canonical_action("yaw") == "yaw"
    assert canonical_action("holiday") is None


def test_thirty_three_configs():
    names = all_config_names()
    assert len(names) == len(set(names)) == 33
    assert {"raw", "c23", "c40", "c40-yaw", "raw-embarrassment"} <= set(names)


@pytest.mark.parametrize("count,expected", [(7, (5, 1, 1)), (20, (14, 3, 3)), (1000, (700, 150, 150)), (2, (2, 0, 0))])
def test_split_sizes(count, expected):
    assert split_sizes(count) == expected


def test_paper_split_is_first_train_next_validation_last_test():
    names = [f"{i:03d}.mp4" for i in range(20)]
    assignment = paper_split(list(reversed(names)))
    assert [assignment[name] for name in names] == ["train"] * 14 + ["validation"] * 3 + ["test"] * 3


def test_identity_split_is_deterministic_and_covers_every_split():
    identities = [f"id{i:02d}" for i in range(20)]
    first = identity_split(identities)
    assert first == identity_split(reversed(identities))
    assert Counter(first.values()) == {"train": 14, "validation": 3, "test": 3}
