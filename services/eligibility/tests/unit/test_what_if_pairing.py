"""The what-if reads the decisions and the households' states apart and pairs them by household id in numpy."""

from __future__ import annotations

import numpy as np

from ejsika_eligibility.what_if import pair


def test_each_key_is_found_at_its_row_and_an_unknown_key_nowhere():
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 256, (5_000, 16), dtype=np.uint8)
    rows = rng.permutation(len(ids))[:3_000]
    keys = ids[rows].copy()
    keys[:3] = rng.integers(0, 256, (3, 16), dtype=np.uint8)  # households without a state
    found = pair(ids, keys)
    assert found[3:].tolist() == rows[3:].tolist()
    assert found[:3].tolist() == [-1, -1, -1]


def test_ids_alike_in_their_first_half_are_told_apart_by_the_second():
    rng = np.random.default_rng(8)
    ids = rng.integers(0, 256, (100, 16), dtype=np.uint8)
    ids[1, :8] = ids[0, :8]
    ids[2, :8] = ids[0, :8]
    stranger = ids[0].copy()
    stranger[15] ^= 1
    assert pair(ids, ids[[2, 1, 0, 50]]).tolist() == [2, 1, 0, 50]
    assert pair(ids, stranger[None, :]).tolist() == [-1]


def test_nothing_to_pair():
    ids = np.zeros((0, 16), dtype=np.uint8)
    keys = np.ones((2, 16), dtype=np.uint8)
    assert pair(ids, keys).tolist() == [-1, -1]
    assert pair(keys, ids).tolist() == []
