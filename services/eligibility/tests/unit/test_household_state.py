"""The narrow household state of migration 016 packs the welfare indicators in the order the reader unpacks them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import ejsika_eligibility
from ejsika_eligibility.household_columns import NUMERIC, YES_NO, State
from ejsika_eligibility.domain.rules import INDICATORS

MIGRATION = Path(ejsika_eligibility.__file__).parent / "migrations" / "016_household_state.sql"


def test_the_packing_function_names_every_indicator_in_the_order_the_reader_expects():
    sql = MIGRATION.read_text()
    fixed = sql[sql.index("CREATE FUNCTION household_state_fixed"):sql.index("CREATE FUNCTION household_state_members")]
    floats = re.findall(r"float8send\(coalesce\(w\.(\w+),", fixed)
    observed = re.findall(r"\(w\.(\w+) IS NOT NULL\)::int(?: \* (\d+))?", fixed)
    yes = re.findall(r"coalesce\(w\.(\w+), false\)::int(?: \* (\d+))?", fixed)
    assert tuple(floats) == NUMERIC
    for bits in (observed, yes):
        assert tuple(name for name, _ in bits) == YES_NO
        assert [int(weight or 1) for _, weight in bits] == [2 ** k for k in range(len(YES_NO))]
    assert set(NUMERIC) | set(YES_NO) == set(INDICATORS) and len(NUMERIC) + len(YES_NO) == len(INDICATORS)
    record = re.search(r"AS w\((.*?)\) ON true", fixed, re.S).group(1)
    assert [field.split()[0] for field in record.split(",")] == list(INDICATORS)


def test_a_state_unpacks_the_bits_floats_and_members_postgresql_packed():
    def be(kind, value):
        return np.asarray([value], dtype=kind).tobytes()

    observed, yes = 0b101, 0b001  # the first yes/no indicator observed yes, the third observed no, the rest unknown
    fixed = (be(">i4", 3672) + be(">i2", 2) + be(">i4", 9500) + be(">f8", 7.5) + be(">f8", np.nan)
             + be(">u4", observed) + be(">u4", yes) + be(">i2", 2))
    members = be(">i4", 365) + be(">i2", 1 | 8) + be(">i4", -1) + be(">i2", 2 | 4 | 16)
    state = State.unpack(fixed, members)
    assert len(state) == 1 and state.region.tolist() == [3672] and state.enrolment.tolist() == [2]
    assert state.welfare[NUMERIC[0]].tolist() == [7.5] and np.isnan(state.welfare[NUMERIC[1]][0])
    assert state.welfare[YES_NO[0]].tolist() == [1.0] and state.welfare[YES_NO[2]].tolist() == [0.0]
    assert np.isnan(state.welfare[YES_NO[1]][0])
    assert state.member_household.tolist() == [0, 0]
    assert state.birth_date.astype(str).tolist() == ["2000-12-31", "1999-12-31"]
    assert state.sex.tolist() == [1, 2] and state.pregnant.tolist() == [True, False]
    assert state.in_school.tolist() == [False, True] and state.disability.tolist() == [False, True]
    assert len(State.unpack(fixed, None).member_household) == 0  # read without members
