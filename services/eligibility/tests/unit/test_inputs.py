"""Each kind of event applied to a household's inputs (pure), the order guard, and order independence."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, timedelta

from ejsika_eligibility.domain.inputs import Facts, changed_inputs, compliance_of, fold, inputs_of

from ..family_events import POOR, Family, member


def state(events, facts=None):
    return fold(facts or {}, events)


def inputs(folded, family):
    return inputs_of(folded.facts[family.id])


def registered_family():
    family = Family()
    head, child = member("head"), member("child", "2015-06-01", in_school=True)
    return family, head, child, family.registered([head, child])


def test_a_registration_gives_inputs_without_who_the_members_are():
    family, head, child, event = registered_family()
    folded = state([event])
    got = inputs(folded, family)
    assert [str(m.member_id) for m in got.members] == [head["member_id"], child["member_id"]]
    assert got.programme == "jamsosratu" and got.region_code == "3672011001"
    assert got.welfare.earth_or_bamboo_floor is True and got.escalation is None
    dumped = got.model_dump_json()
    assert "Anggota" not in dumped and "nik" not in dumped and "kk_number" not in dumped
    assert folded.facts[family.id].registered_on == date(2026, 3, 2)
    assert folded.changed == {family.id: event}


def test_a_v1_registration_gets_member_ids_that_a_replay_gives_again():
    family = Family()
    event = family.registered_v1([member("head"), member("child", "2016-01-01")])
    first, again = inputs(state([event]), family), inputs(state([event]), family)
    assert first == again and len({m.member_id for m in first.members}) == 2
    assert state([event]).facts[family.id].version == 1


def test_a_household_update_changes_only_the_fields_it_names():
    family, head, child, registered = registered_family()
    poorer = {**POOR, "no_electricity": True}
    folded = state([registered, family.updated(welfare=poorer), family.updated(region_code="3672021002")])
    got = inputs(folded, family)
    assert got.welfare.no_electricity is True and got.region_code == "3672021002"
    moved_pendamping = state([registered, family.updated(pendamping_id="pendamping-2")])
    assert moved_pendamping.facts[family.id].pendamping_id == "pendamping-2"
    assert not changed_inputs(state([registered]).facts[family.id], moved_pendamping.facts[family.id])


def test_members_added_updated_and_ended():
    family, head, child, registered = registered_family()
    baby = member("child", "2026-02-20", sex="F")
    grown = {**child, "in_school": False}
    folded = state([registered, family.added(baby), family.member_updated(grown, "in_school"),
                    family.ended(head["member_id"])])
    got = inputs(folded, family)
    assert [str(m.member_id) for m in got.members] == [child["member_id"], baby["member_id"]]
    assert got.members[0].in_school is False


def test_a_move_takes_the_member_from_one_household_to_the_other():
    left, head, child, registered_left = registered_family()
    joined = Family()
    spouse_id = uuid.uuid4()
    new_head = member("head", "1995-01-01")
    registered_joined = joined.registered([new_head])
    moved = joined.moved_in(left, child["member_id"], member("spouse", "2015-06-01", member_id=spouse_id))
    folded = state([registered_left, registered_joined, moved])
    assert [str(m.member_id) for m in inputs(folded, left).members] == [head["member_id"]]
    assert [m.member_id for m in inputs(folded, joined).members] == [uuid.UUID(new_head["member_id"]), spouse_id]
    assert set(folded.changed) == {left.id, joined.id}


def test_a_move_read_before_the_household_left_was_registered_still_takes_the_member_away():
    """The move is keyed by the household joined: its partition may be read first."""
    left, head, child, registered_left = registered_family()
    joined = Family()
    registered_joined = joined.registered([member("head", "1995-01-01")])
    moved = joined.moved_in(left, child["member_id"], member("spouse", "2015-06-01"))
    for order in ([registered_left, registered_joined, moved], [registered_joined, moved, registered_left]):
        folded = state(order)
        assert [str(m.member_id) for m in inputs(folded, left).members] == [head["member_id"]]


def test_head_changed_sets_the_relations():
    family, head, child, registered = registered_family()
    folded = state([registered, family.head_changed(child["member_id"], head["member_id"],
                                                    [(head["member_id"], "parent")])])
    relations = {str(m.member_id): m.relation for m in inputs(folded, family).members}
    assert relations == {head["member_id"]: "parent", child["member_id"]: "head"}


def test_a_split_takes_its_members_away():
    family, head, child, registered = registered_family()
    folded = state([registered, family.split(uuid.uuid4(), [child["member_id"]])])
    assert [str(m.member_id) for m in inputs(folded, family).members] == [head["member_id"]]


def test_enrolment_changes_set_the_status_and_are_kept_as_steps():
    family, head, child, registered = registered_family()
    steps = [family.enrolment("candidate", None), family.enrolment("active", "candidate"),
             family.enrolment("exited", "active", "alamiah")]
    folded = state([registered, *steps])
    assert folded.facts[family.id].enrolment_status == "exited"
    assert [(s.status, s.exit_kind, s.event_id) for s in folded.steps] == [
        ("candidate", None, steps[0].id), ("active", None, steps[1].id), ("exited", "alamiah", steps[2].id)]
    assert changed_inputs(state([registered]).facts[family.id], folded.facts[family.id])


def test_the_order_guard_ignores_what_is_not_newer():
    family, head, child, registered = registered_family()
    update = family.updated(welfare={**POOR, "no_electricity": True})
    folded = state([registered, update])
    again = fold(folded.facts, [update, registered])  # redelivered, replayed: older or equal versions
    assert again.facts == folded.facts and again.changed == {} and again.steps == []
    stale = family.updated(region_code="3672031003").model_copy(
        update={"data": family.updated(region_code="3672031003").data.model_copy(update={"version": 1})})
    assert fold(folded.facts, [stale]).changed == {}


def test_a_flag_changes_the_version_but_not_the_inputs():
    family, head, child, registered = registered_family()
    before = state([registered]).facts[family.id]
    after = fold({family.id: before}, [family.flagged(head["member_id"])]).facts[family.id]
    assert after.version == before.version + 1 and not changed_inputs(before, after)


def test_registry_events_of_a_household_never_registered_here_are_set_aside():
    family, head, child, registered = registered_family()
    update = family.updated(region_code="3672021002")
    folded = state([update])
    assert folded.unknown == [update] and folded.changed == {}


def test_visits_set_school_and_pregnancy_and_the_latest_word_wins():
    family, head, child, registered = registered_family()
    mother = member("spouse", "1990-01-01", sex="F")
    registered = family.registered([head, child, mother])
    dropped_out = family.visit(school=[(child["member_id"], False)], antenatal=[mother["member_id"]])
    folded = state([registered, dropped_out])
    got = {str(m.member_id): m for m in inputs(folded, family).members}
    assert got[child["member_id"]].in_school is False and got[mother["member_id"]].pregnant is True
    # an older visit uploaded late does not undo a newer one
    late = family.visit(school=[(child["member_id"], True)], captured_at=dropped_out.data.captured_at - timedelta(days=20))
    assert inputs(fold(folded.facts, [late]), family) == inputs(folded, family)
    # the registry saying so afterwards wins over the visit
    back = family.member_updated({**child, "in_school": True}, "in_school")
    assert inputs(fold(folded.facts, [back]), family).members[1].in_school is True


def test_visits_read_before_the_registration_join_it():
    family, head, child, registered = registered_family()
    visit = family.visit(school=[(child["member_id"], False)])
    early = state([visit])
    assert inputs_of(early.facts[family.id]) is None and early.unknown == []
    assert inputs(state([registered, visit]), family) == inputs(fold(early.facts, [registered]), family)


def test_an_escalation_opens_a_paksa_ground_and_a_later_compliant_period_clears_it():
    family, head, child, registered = registered_family()
    school = child["member_id"]
    escalated = family.escalated(school, date(2026, 3, 31))
    folded = state([registered, escalated])
    escalation = inputs(folded, family).escalation
    assert escalation.kind == "school_dropout_risk" and escalation.period == date(2026, 3, 31)
    assert "3 consecutive periods" in escalation.reason and school not in escalation.reason
    same_period = family.verified(date(2026, 3, 31), [(school, "school", "compliant")], revision=2)
    assert inputs(fold(folded.facts, [same_period]), family).escalation is not None
    later = family.verified(date(2026, 4, 30), [(school, "school", "compliant")])
    cleared = fold(folded.facts, [later])
    assert inputs(cleared, family).escalation is None
    assert compliance_of(cleared.facts[family.id])[0]["result"] == "compliant"


def test_compliance_keeps_the_latest_period_and_revision_per_member_and_commitment():
    family, head, child, registered = registered_family()
    school = child["member_id"]
    april = family.verified(date(2026, 4, 30), [(school, "school", "non_compliant")])
    march_revised = family.verified(date(2026, 3, 31), [(school, "school", "compliant")], revision=2)
    kept = compliance_of(state([registered, april, march_revised]).facts[family.id])
    assert [(c["period_end"], c["result"]) for c in kept] == [("2026-04-30", "non_compliant")]


def test_events_of_no_concern_change_nothing():
    family, head, child, registered = registered_family()
    folded = state([registered])
    assert fold(folded.facts, [family.scheduled()]).changed == {}


def test_the_inputs_do_not_depend_on_the_order_the_three_topics_are_read():
    """Each topic is in order for a household; the topics are not in order with each other."""
    family, head, child, registered = registered_family()
    school = child["member_id"]
    household = [registered, family.member_updated({**child, "in_school": False}, "in_school"),
                 family.enrolment("active", "candidate")]
    visits = [family.visit(school=[(school, True)])]
    compliance = [family.escalated(school, date(2026, 3, 31)),
                  family.verified(date(2026, 4, 30), [(school, "school", "non_compliant")])]
    results = set()
    for first, second, third in itertools.permutations([household, visits, compliance]):
        facts = fold(fold(fold({}, first).facts, second).facts, third).facts[family.id]
        results.add((inputs_of(facts).model_dump_json(), facts.enrolment_status))
    assert len(results) == 1
    (got, status), = results
    assert status == "active" and '"in_school":true' in got and "school_dropout_risk" in got


def test_facts_survive_their_json():
    family, head, child, registered = registered_family()
    folded = state([registered, family.visit(school=[(child["member_id"], False)]),
                    family.escalated(child["member_id"], date(2026, 3, 31))])
    facts = folded.facts[family.id]
    assert Facts.model_validate_json(facts.model_dump_json()) == facts


def test_a_household_assessed_before_its_inputs_were_kept_goes_on_from_its_stored_registration():
    """Migration 010: households assessed at registration have their registration stored, not their facts."""
    from datetime import datetime, timezone

    from ejsika_eligibility.domain.inputs import from_assessed

    family, head, child, registered = registered_family()
    identity = {"members": {"__all__": {"nik", "name"}}, "kk_number": True, "address": True}
    stored = registered.data.model_dump_json(exclude=identity)  # as the assessment at registration kept it
    facts = from_assessed(family.id, stored, 1, datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert inputs_of(facts) == inputs(state([registered]), family)
    later = fold({family.id: facts}, [family.updated(region_code="3672021002")])
    assert inputs(later, family).region_code == "3672021002"
    v1 = family.registered_v1([member("head")])
    old = from_assessed(family.id, v1.data.model_dump_json(exclude=identity), 1, v1.time)
    assert inputs_of(old).members == inputs(state([v1]), family).members


def test_a_household_whose_inputs_change_twice_in_a_batch_is_assessed_on_each_state_in_turn():
    from ejsika_eligibility.domain.inputs import assessments

    family, head, child, registered = registered_family()
    other, *_ = registered_family()
    first = family.updated(welfare={**POOR, "no_electricity": True})
    no_op = family.updated(pendamping_id="pendamping-2")
    second = family.member_updated({**child, "disability": True}, "disability")
    before = state([registered]).facts
    arrived = other.registered([member("head")])
    folded = fold(before, [first, no_op, arrived, second])
    rounds = [{h: (e, facts) for h, e, facts in r} for r in assessments(before, folded)]
    assert [{h: e.id for h, (e, _) in r.items()} for r in rounds] == [
        {family.id: first.id, other.id: arrived.id}, {family.id: second.id}]
    assert inputs_of(rounds[0][family.id][1]).welfare.no_electricity is True
    assert inputs_of(rounds[0][family.id][1]).members[1].disability is False
    assert inputs_of(rounds[1][family.id][1]).members[1].disability is True
