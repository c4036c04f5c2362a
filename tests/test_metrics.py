"""Detection metrics against hand-computed cases."""

import numpy as np
import pytest

from training.metrics import (
    SingleClassError,
    accuracy,
    auc,
    average_precision,
    detection_metrics,
    equal_error_rate,
    video_scores,
)


def test_video_score_is_the_mean_frame_probability_in_first_seen_order():
    labels, scores = video_scores([7, 7, 3, 3, 3], [1, 1, 0, 0, 0], [0.9, 0.5, 0.1, 0.4, 0.4])
    assert labels.tolist() == [1, 0]
    assert scores == pytest.approx([0.7, 0.3])
    with pytest.raises(ValueError, match="different labels"):
        video_scores([0, 0], [0, 1], [0.2, 0.8])


def test_accuracy_uses_one_half_as_the_threshold():
    assert accuracy([0, 1, 1, 0], [0.49, 0.5, 0.2, 0.51]) == 0.5  # 0.5 says fake; 0.2 and 0.51 are wrong


def test_auc_counts_ties_as_half():
    # positives 0.5, 0.8; negatives 0.5, 0.2: pairs (0.5 vs 0.5) tie -> 0.5, the other three are ordered -> 3.5/4
    assert auc([1, 1, 0, 0], [0.5, 0.8, 0.5, 0.2]) == pytest.approx(3.5 / 4)


def test_equal_error_rate_of_perfect_random_and_interpolated_cases():
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert equal_error_rate([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    # one negative scores above one positive: at every threshold FPR and FNR meet at 1/3 ... 1/2
    eer = equal_error_rate([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.7, 0.6, 0.8, 0.9])
    assert eer == pytest.approx(1 / 3)


def test_average_precision_of_a_hand_ranked_list():
    # ranking: 0.9 (fake), 0.8 (real), 0.7 (fake): precision at the fakes 1 and 2/3 -> AP = (1 + 2/3) / 2
    assert average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx((1 + 2 / 3) / 2)


def test_a_single_class_split_gets_a_clear_error():
    with pytest.raises(SingleClassError, match="only fake"):
        auc([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(SingleClassError, match="only real"):
        detection_metrics([0, 0], [0.1, 0.3], [0, 1])


def test_detection_metrics_reports_frame_and_video_keys():
    metrics = detection_metrics([0, 0, 1, 1], [0.4, 0.2, 0.6, 0.45], video_index=[0, 0, 1, 1])
    assert set(metrics) == {"frame_accuracy", "frame_auc", "video_accuracy", "video_auc", "eer", "ap"}
    assert metrics["frame_accuracy"] == 0.75 and metrics["video_accuracy"] == 1.0
    assert np.isclose(metrics["video_auc"], 1.0) and metrics["eer"] == 0.0
