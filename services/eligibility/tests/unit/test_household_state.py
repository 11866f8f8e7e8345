"""The narrow household state of migrations 016 and 018 cuts the welfare indicators out of the packed inputs
(migration 009) at the offsets of the order the reader unpacks them in."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import ejsika_eligibility
from ejsika_eligibility.household_columns import NUMERIC, YES_NO, State
from ejsika_eligibility.domain.rules import INDICATORS

MIGRATION = Path(ejsika_eligibility.__file__).parent / "migrations" / "018_household_state_from_columns.sql"
PACKED = Path(ejsika_eligibility.__file__).parent / "migrations" / "009_assessed_columns.sql"


def test_the_packing_function_cuts_every_indicator_where_the_packed_inputs_hold_it():
    packed = re.findall(r"float8send\(coalesce\(w\.(\w+)", PACKED.read_text())
    assert tuple(packed) == tuple(INDICATORS)  # indicator i is the float8 at 8 + 8 i
    sql = MIGRATION.read_text()
    fixed = sql[sql.index("CREATE FUNCTION household_state_fixed"):sql.index("CREATE FUNCTION household_state_members")]
    floats = [int(at) for at in re.findall(r"substring\(c FROM (\d+) FOR 8\)", fixed)]
    assert [(at - 1 - 8) // 8 for at in floats] == [list(INDICATORS).index(name) for name in NUMERIC]
    observed = re.findall(r"\(get_byte\(c, (\d+)\) <> 127\)::int(?: \* (\d+))?", fixed)
    yes = re.findall(r"\(get_byte\(c, (\d+)\) = 63\)::int(?: \* (\d+))?", fixed)
    for bits in (observed, yes):
        assert [list(INDICATORS)[(int(at) - 8) // 8] for at, _ in bits] == list(YES_NO)
        assert [int(weight or 1) for _, weight in bits] == [2 ** k for k in range(len(YES_NO))]
    assert set(NUMERIC) | set(YES_NO) == set(INDICATORS) and len(NUMERIC) + len(YES_NO) == len(INDICATORS)


def test_a_state_unpacks_the_bits_floats_and_members_postgresql_packed():
    def be(kind, value):
        return np.asarray([value], dtype=kind).tobytes()

    observed, yes = 0b101, 0b001  # the first yes/no indicator observed yes, the third observed no, the rest unknown
    fixed = (be(">i4", 3672) + be(">i2", 2) + be(">i4", 9500) + be(">f8", 7.5) + be(">f8", np.nan)
             + be(">u4", observed) + be(">u4", yes) + be(">i2", 2))

    def person(born, sex, school, pregnant, disability):  # as migration 009 packs a member
        return bytes(16) + b"\x01" + be(">i4", born) + be(">i2", sex) + bytes([school, pregnant, disability])

    members = person(365, 1, 0, 1, 0) + person(-1, 2, 1, 0, 1)
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
