"""The programme configuration of monitoring (programmes.json)."""

import json

import pytest
from pydantic import ValidationError

from ejsika_monitoring.domain import programmes


def test_the_shipped_file_follows_both_programmes_monthly_with_pkh_commitments():
    shipped = programmes.load()
    assert set(shipped) == {"jamsosratu", "jscm"}
    for p in shipped.values():
        assert (p.visit_interval_days, p.first_visit_within_days, p.verification_period_months) == (30, 14, 1)
        c = p.commitments
        assert (c.school_attendance_min, c.school_age, c.toddler_age_months, c.escalate_after_periods) == \
            (0.85, (7, 21), (0, 59), 3)


def test_a_programme_the_file_does_not_name_gets_the_defaults():
    assert programmes.programme("new-programme").visit_interval_days == 30


@pytest.mark.parametrize("broken", [
    {"programmes": []},
    {"programmes": [{"code": "jscm"}, {"code": "jscm"}]},
    {"programmes": [{"code": "jscm", "visit_interval_days": 0}]},
    {"programmes": [{"code": "jscm", "commitments": {"school_age": [21, 7]}}]},
    {"programmes": [{"code": "jscm", "surprise": 1}]},
])
def test_a_broken_file_is_refused(broken):
    with pytest.raises(ValidationError):
        programmes.parse(json.dumps(broken))


def test_use_replaces_the_programmes_in_place(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"programmes": [{"code": "jscm", "visit_interval_days": 7}]}))
    held = programmes.PROGRAMMES
    try:
        programmes.use(path)
        assert held["jscm"].visit_interval_days == 7 and "jamsosratu" not in held
    finally:
        programmes.use(None)
    assert held["jamsosratu"].visit_interval_days == 30
