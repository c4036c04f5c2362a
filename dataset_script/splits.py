"""Split protocols. Membership is computed once, at build time, and written into the dataset repo as data.

* ``paper``: the authors' only word on order is "first videos of each class for train, next for validation,
  last for test" at 70/15/15. We apply it per release folder (each action, and the real clips), sorted by
  file name, so every action is split in the same proportions.
* ``identity``: where source identities are known (generated data, the mini), identities are dealt to
  train/validation/test 70/15/15 so no test identity is ever seen in training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from .schema import SPLITS

SPLIT_FRACTIONS = (0.70, 0.15, 0.15)


def split_sizes(count: int) -> tuple[int, int, int]:
    """70/15/15 sizes that keep validation and test non-empty whenever there are at least three items."""
    if count < 3:
        return count, 0, 0
    validation = max(1, round(count * SPLIT_FRACTIONS[1]))
    test = max(1, round(count * SPLIT_FRACTIONS[2]))
    return count - validation - test, validation, test


def paper_split(sorted_names: Sequence[str]) -> dict[str, str]:
    """Split of each name of one class: the first 70% train, the next 15% validation, the last 15% test."""
    n_train, n_validation, _ = split_sizes(len(sorted_names))
    assignment = {}
    for index, name in enumerate(sorted(sorted_names)):
        if index < n_train:
            assignment[name] = SPLITS[0]
        elif index < n_train + n_validation:
            assignment[name] = SPLITS[1]
        else:
            assignment[name] = SPLITS[2]
    return assignment


def stable_hash(text: str) -> int:
    """A hash that, unlike ``hash()``, is the same in every process and on every machine."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def identity_split(identities: Iterable[str], seed: int | None = None) -> dict[str, str]:
    """Deal identities to train/validation/test 70/15/15, in an order fixed by their names alone (and ``seed``).

    Generators call this on their identity list to keep driving identities inside the source's split, and the
    build calls it on the identities it finds; the same list (and seed) always gives the same assignment. None
    keeps the order the project's own data has always been dealt in.
    """
    prefix = "" if seed is None else f"{seed}:"
    ordered = sorted(set(identities), key=lambda identity: (stable_hash(prefix + identity), identity))
    n_train, n_validation, _ = split_sizes(len(ordered))
    return {
        identity: SPLITS[0] if i < n_train else SPLITS[1] if i < n_train + n_validation else SPLITS[2]
        for i, identity in enumerate(ordered)
    }
