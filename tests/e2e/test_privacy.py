"""Personal data never leaves where it belongs: property-based, on the running platform.

Hypothesis generates people of Banten (NIKs that match their declared sex and birth date, unicode
names with spaces, apostrophes and dots, pregnancy and disability flags) and drives the platform with
them: valid registrations (one by one and in batches, as the pendamping), invalid ones of every kind
(malformed, unknown district or impossible date in the NIK, empty or over-long names and addresses,
wrong types, a member keyed by its NIK, a NUL, a pregnant man, no head, a person registered twice),
a birth date or sex that the NIK contradicts (refused, or taken with a data-quality flag), reads
of the household by its pendamping and by callers who may not see it,
data-subject requests, NIKs in URLs, and malformed events carrying the same people straight to the
topics (as a faulty producer would). The valid households flow through eligibility, monitoring and
notifications to the demo agency.

Then every generated NIK (always) and name (of 6 characters or more) is looked for in: every log
line of every service, every HTTP error answer (status, headers and body, and the reason of each
rejected registration of a batch), every service's /metrics, every webhook the agency received,
and the headers of every dead letter. None may contain one. Successful answers to authorised reads
hold the family's data by design and are not searched.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ejsika_contracts import ELIGIBILITY, HOUSEHOLD
from ejsika_contracts.topics import TOPICS
from ejsika_notifications.pseudonyms import Pseudonyms
from ejsika_runtime.dead_letter_tool import read

from .conftest import Platform, eventually

TODAY = date.today()
# Kecamatan (PPKKSS) of Banten with the last four digits of some of their villages (Kepmendagri
# 300.2.2-2138/2025): the registry checks that both exist. Kota Cilegon's (3672) are the only ones the
# jscm programme serves; Kab. Lebak's (3602) are those supervisor-lebak oversees.
VILLAGES = {
    **{f"3672{d:02d}": ("1001", "1002", "1003", "1004") for d in range(1, 9)},
    "360101": ("2001", "2002", "2003", "2004"), "360215": ("2001", "2002", "2003", "2004"),
    "360302": ("2001", "2002", "2004", "2005"), "360405": ("2001", "2002", "2003", "2004"),
    "367101": ("1001", "1002", "1003", "1004"), "367303": ("1001", "1002", "1003", "1004"),
    "367402": ("1001", "1002", "1003", "1004"),
}
CILEGON = tuple(d for d in VILLAGES if d.startswith("3672"))
BANTEN = tuple(VILLAGES)
MIN_NAME = 6  # shorter names are not searched: too many false positives
# Nor a name that is one plain ASCII word: Hypothesis draws words from the code's own constants
# ("applied", "registered", …), and a log line may hold such a word for another reason.
IDENTIFIER_LIKE = re.compile(r"[A-Za-z]+")
CRITERIA = (
    "earth_or_bamboo_floor", "bamboo_or_unplastered_walls", "no_private_toilet", "no_electricity",
    "unprotected_water", "cooks_with_wood_or_kerosene", "protein_at_most_weekly", "one_set_of_clothes_a_year",
    "at_most_two_meals_a_day", "cannot_pay_clinic", "head_low_income", "head_primary_education_or_less",
    "no_savings_over_500k",
)


# ---- strategies ----------------------------------------------------------------------------------

letters = st.characters(categories=("Lu", "Ll", "Lo"))  # any script's letters
words = st.one_of(st.from_regex(r"[A-Z][a-z]{1,9}", fullmatch=True),  # Mawardi
                  st.from_regex(r"[A-Z][a-zàáâãäèéêëìíîïòóôõöùúûü]{1,9}", fullmatch=True),  # Zaïnal
                  st.text(letters, min_size=2, max_size=10))  # 봈ŧİį


@st.composite
def names(draw) -> str:
    parts = draw(st.lists(words, min_size=1, max_size=4))
    name = parts[0]
    for part in parts[1:]:
        name += draw(st.sampled_from([" ", " ", "'", ".", ". "])) + part
    if draw(st.booleans()):  # e.g. MAWARDI.Z
        name += "." + draw(st.characters(categories=("Lu",)))
    return draw(st.sampled_from([str, str.upper, str.lower, str.title]))(name)


def born_between(min_age: int, max_age: int) -> st.SearchStrategy[date]:
    # A NIK's YY reads as 20YY unless that is after today: every birth date within 99 years is writable.
    oldest = TODAY - timedelta(days=max_age * 365 + max_age // 4)
    return st.dates(min_value=max(oldest, TODAY - timedelta(days=99 * 365)),
                    max_value=TODAY - timedelta(days=min_age * 365 + min_age // 4))


@st.composite
def people(draw, relation: str, sex: str | None = None) -> dict:
    sex = sex or draw(st.sampled_from("FM"))
    adult = relation in ("head", "spouse", "parent")
    born = draw(born_between(18, 90) if adult else born_between(0, 25))
    age = (TODAY - born).days // 365
    return {
        "name": draw(names()),
        "sex": sex,
        "birth_date": born.isoformat(),
        "relation": relation,
        "in_school": draw(st.booleans()) if 6 <= age <= 20 else False,
        "pregnant": sex == "F" and 16 <= age <= 45 and draw(st.booleans()),
        "disability": draw(st.booleans()),
    }


@st.composite
def households(draw) -> dict:
    """A registration without NIKs and request id: those are given when it is sent, unique in the session."""
    programme = draw(st.sampled_from(["jamsosratu", "jscm"]))
    district = draw(st.sampled_from(CILEGON if programme == "jscm" else BANTEN))
    head = draw(people("head"))
    members = [head]
    if draw(st.booleans()):
        members.append(draw(people("spouse", sex="F" if head["sex"] == "M" else "M")))
    members += draw(st.lists(people("child"), max_size=2))
    if draw(st.integers(0, 4)) == 0:
        members.append(draw(people("parent")))
    issued = draw(st.dates(TODAY - timedelta(days=30 * 365), TODAY))
    deprived = draw(st.integers(0, len(CRITERIA)))
    welfare = {c: i < deprived for i, c in enumerate(draw(st.permutations(CRITERIA)))}
    welfare["floor_area_per_person_m2"] = draw(st.floats(3, 30).map(lambda f: round(f, 1)))
    return {
        "programme": programme,
        "district": district,
        "region_code": district + draw(st.sampled_from(VILLAGES[district])),
        "kk_number": f"{district}{issued:%d%m%y}{draw(st.integers(0, 9999)):04d}",
        "address": f"Kampung {draw(names())} RT {draw(st.integers(1, 15)):02d}",
        "members": members,
        "welfare": welfare,
    }


# Invalid registrations. The schema refuses the first group (the whole request is a 422); the
# registry's rules refuse the second (a 422 alone, a `rejected` result in a batch).
SHAPE_FAULTS = ("nik_short", "nik_long", "nik_letters", "nik_as_number", "empty_name", "long_name",
                "long_address", "birth_date_as_list", "flag_as_text", "member_keyed_by_nik", "nul_in_name")
# The registry may take a declared birth date or sex that the NIK contradicts with a data-quality
# flag for an operator to review, rather than refuse the family.
QUALITY_FAULTS = ("birth_date_mismatch", "sex_mismatch")
RULE_FAULTS = ("nik_unknown_province", "nik_impossible_date", "birth_date_mismatch", "sex_mismatch",
               "pregnant_man", "no_head", "nik_repeated", "already_registered_member")


@st.composite
def scenarios(draw) -> dict:
    return {
        "valid": draw(st.lists(households(), min_size=1, max_size=3)),
        "faults": draw(st.lists(st.tuples(st.sampled_from(SHAPE_FAULTS + RULE_FAULTS), households(),
                                          st.integers(0, 3)), min_size=1, max_size=4)),
        "batch": draw(st.booleans()),  # the other valid households (and rule faults) in one batch
        "poison": draw(st.integers(0, 3)) == 0,  # a malformed event with these people, straight to Kafka
    }


# ---- the run's collector -------------------------------------------------------------------------

@dataclass
class Collector:
    niks: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (what was asked, the whole answer)
    registered: dict[str, dict] = field(default_factory=dict)  # household id -> registration
    poison: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (topic, key, value)
    serial: int = 0
    examples: int = 0
    requests: int = 0

    def nik(self, district: str, born: str, sex: str) -> str:
        """A NIK of the person's district, birth date (+40 on the day for women) and a serial of this session.

        Serials 9000-9999: away from those of the synthetic families the other tests register.
        """
        day = date.fromisoformat(born)
        self.serial += 1
        serial = 9000 + self.serial % 1000
        return f"{district}{day.day + (40 if sex == 'F' else 0):02d}{day.month:02d}{day:%y}{serial:04d}"

    def remember(self, body: dict) -> None:
        """The NIKs (valid or not) and names a request body carries, to be searched for later."""
        for member in body["members"]:
            if "nik" in member:
                nik = member["nik"]
            else:  # a member keyed by its NIK
                ((nik, member),) = member.items()
            self.niks.add(str(nik))
            name = str(member["name"]).replace("\x00", "")
            if len(name) >= MIN_NAME:
                self.names.add(name)

    def answer(self, label: str, response: httpx.Response) -> httpx.Response:
        """Keep a 4xx/5xx answer to search; successful answers to authorised requests hold data by design."""
        self.requests += 1
        assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:500]}"
        if response.status_code >= 400:
            headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
            self.errors.append((label, f"{response.status_code}\n{headers}\n\n{response.text}"))
        return response


@pytest.fixture(scope="module")
def collector() -> Collector:
    return Collector()


def finished(collector: Collector, template: dict) -> dict:
    """The registration body of a generated household, with fresh NIKs and request id."""
    body = {k: v for k, v in template.items() if k != "district"}
    body["request_id"] = str(uuid.uuid4())
    body["members"] = [{**m, "nik": collector.nik(template["district"], m["birth_date"], m["sex"])}
                       for m in template["members"]]
    body["members"] = [{"nik": m.pop("nik"), **m} for m in body["members"]]
    return body


def broken(collector: Collector, fault: str, template: dict, index: int, registered: list[dict]) -> dict:
    body = finished(collector, template)
    collector.remember(body)  # the people as generated, before the fault
    member = body["members"][index % len(body["members"])]
    nik, born = member["nik"], date.fromisoformat(member["birth_date"])
    if fault == "nik_short":
        member["nik"] = nik[:15]
    elif fault == "nik_long":
        member["nik"] = nik + "7"
    elif fault == "nik_letters":
        member["nik"] = nik[:14] + "AB"
    elif fault == "nik_as_number":
        member["nik"] = int(nik)
    elif fault == "empty_name":
        member["name"] = ""
    elif fault == "long_name":
        member["name"] = (member["name"] + " ") * (201 // (len(member["name"]) + 1) + 1)
    elif fault == "long_address":
        body["address"] = f"Jl. {member['name']} " + "No. 1 " * 90
    elif fault == "birth_date_as_list":
        member["birth_date"] = [born.year, born.month, born.day]
    elif fault == "flag_as_text":
        member["pregnant"] = "ya"
    elif fault == "member_keyed_by_nik":  # a map of members by NIK where a list entry was expected
        body["members"][index % len(body["members"])] = {nik: {k: v for k, v in member.items() if k != "nik"}}
    elif fault == "nul_in_name":
        member["name"] += "\x00"
    elif fault == "nik_unknown_province":
        member["nik"] = "99" + nik[2:]
    elif fault == "nik_impossible_date":
        member["nik"] = nik[:6] + "32" + nik[8:] if index % 2 else nik[:8] + "13" + nik[10:]
    elif fault == "birth_date_mismatch":
        member["birth_date"] = (born - timedelta(days=1 + index)).isoformat()
    elif fault == "sex_mismatch":
        member["sex"] = "M" if member["sex"] == "F" else "F"
        member["pregnant"] = False
    elif fault == "pregnant_man":
        member["nik"] = collector.nik(template["district"], member["birth_date"], "M")
        member["sex"], member["pregnant"] = "M", True
    elif fault == "no_head":
        for m in body["members"]:
            m["relation"] = "other" if m["relation"] == "head" else m["relation"]
    elif fault == "nik_repeated":
        if len(body["members"]) == 1:
            body["members"].append({**member, "relation": "other"})
        else:
            body["members"][1]["nik"] = body["members"][0]["nik"]
    elif fault == "already_registered_member":
        person = registered[index % len(registered)]["members"][0]
        body["members"].append({**person, "relation": "other"})
    return body


# ---- driving the platform ------------------------------------------------------------------------

def post(collector: Collector, client: httpx.Client, label: str, path: str, body) -> httpx.Response:
    return collector.answer(label, client.post(path, json=body, timeout=30))


def post_batch(collector: Collector, client: httpx.Client, label: str, bodies: list[dict]) -> list[dict] | None:
    """The results of a batch, or None if it was refused as a whole (422); a refused row is an error answer."""
    answer = post(collector, client, f"POST /households/batch ({label})", "/households/batch",
                  {"registrations": bodies})
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        return None
    results = answer.json()["results"]
    for result in results:
        if result["result"] not in ("registered", "already_registered"):
            # the reason of a refusal is an error answer, even inside a 200
            collector.errors.append((f"POST /households/batch ({label}): result {result['result']}",
                                     json.dumps(result, ensure_ascii=False)))
    return results


@settings(max_examples=25, deadline=None, derandomize=True, database=None, print_blob=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(scenario=scenarios())
def test_registrations_reads_and_refusals_with_generated_people(platform: Platform, collector: Collector,
                                                               scenario: dict):
    collector.examples += 1
    registry = platform.client("registry")  # the demo pendamping
    valid = [finished(collector, h) for h in scenario["valid"]]
    for body in valid:
        collector.remember(body)

    first = post(collector, registry, "POST /households (valid)", "/households", valid[0])
    assert first.status_code == 201, first.text
    collector.registered[first.json()["household_id"]] = valid[0]

    faults = [(fault, broken(collector, fault, template, index, valid[:1]))
              for fault, template, index in scenario["faults"]]
    for _, body in faults:
        collector.remember(body)  # and as sent
    rule_faults = [(f, b) for f, b in faults if f in RULE_FAULTS]
    shape_faults = [(f, b) for f, b in faults if f in SHAPE_FAULTS]

    if scenario["batch"]:
        batch = valid[1:] + [b for _, b in rule_faults]
        if batch:
            results = post_batch(collector, registry, "valid + rule faults", batch)
            assert results is not None, "a batch of schema-valid registrations is answered row by row"
            for body, result in zip(valid[1:], results):
                assert result["result"] == "registered", result
                collector.registered[result["household_id"]] = body
            for (fault, body), result in zip(rule_faults, results[len(valid) - 1:]):
                if fault in QUALITY_FAULTS and result["result"] == "registered":
                    collector.registered[result["household_id"]] = body
                else:
                    assert result["result"] in ("rejected", "duplicate_member"), (fault, result)
        if shape_faults:
            # refused as a whole (422), or row by row (each row `invalid`)
            results = post_batch(collector, registry, "shape faults", [b for _, b in shape_faults])
            assert results is None or {r["result"] for r in results} == {"invalid"}, results
    else:
        for body in valid[1:]:
            answer = post(collector, registry, "POST /households (valid)", "/households", body)
            assert answer.status_code == 201, answer.text
            collector.registered[answer.json()["household_id"]] = body
        for fault, body in rule_faults + shape_faults:
            answer = post(collector, registry, f"POST /households ({fault})", "/households", body)
            expected = {409} if fault == "already_registered_member" else {201, 422} if fault in QUALITY_FAULTS \
                else {422}
            assert answer.status_code in expected, (fault, answer.status_code, answer.text)
            if answer.status_code == 201:
                collector.registered[answer.json()["household_id"]] = body

    household = first.json()["household_id"]
    person = valid[0]["members"][0]
    # its own pendamping reads it; others may not even learn that it exists
    assert registry.get(f"/households/{household}").status_code == 200
    for role, user in ((None, "pendamping-other"), ("agency", None), (None, "supervisor-lebak")):
        for service, path in (("registry", f"/households/{household}"),
                              ("monitoring", f"/households/{household}/visits"),
                              ("eligibility", f"/households/{household}/assessments")):
            answer = collector.answer(f"GET {path} as {role or user}",
                                      platform.client(service, role=role, user=user).get(path))
            # supervisor-lebak oversees Kab. Lebak (3602) only
            sees = user == "supervisor-lebak" and valid[0]["region_code"].startswith("3602")
            # (monitoring and eligibility know of the household once its event reached them)
            allowed = {404} if not sees else {200} if service == "registry" else {200, 404}
            assert answer.status_code in allowed, (role or user, path, answer.status_code)
    # data-subject requests: by those who may (their answer is the person's data), and refusals
    for role in ("operator", "auditor"):
        answer = post(collector, platform.client("registry", role=role), f"POST /data-subject-requests as {role}",
                      "/data-subject-requests", {"nik": person["nik"]})
        assert answer.status_code == 200, answer.text
    refused = post(collector, registry, "POST /data-subject-requests as pendamping", "/data-subject-requests",
                   {"nik": person["nik"]})
    assert refused.status_code == 403
    malformed = post(collector, platform.client("registry", role="auditor"), "POST /data-subject-requests (bad NIK)",
                     "/data-subject-requests", {"nik": person["nik"][:15], "name": person["name"]})
    assert malformed.status_code == 422
    # a NIK where an id or a code belongs
    auditor = platform.client("registry", role="auditor")
    collector.answer("GET /households/{nik}", auditor.get(f"/households/{person['nik']}"))
    collector.answer("GET /processing-records?household_id={nik}",
                     auditor.get("/processing-records", params={"household_id": person["nik"]}))
    collector.answer("GET /visits/overdue?region_prefix={nik}",
                     platform.client("monitoring", role="auditor").get("/visits/overdue",
                                                                      params={"region_prefix": person["nik"]}))

    if scenario["poison"]:
        collector.poison += poison_events(valid[0])


def poison_events(body: dict) -> list[tuple[str, bytes, bytes]]:
    """Malformed events carrying the household's people, as a faulty producer would publish them."""
    key = str(uuid.uuid4()).encode()
    member = body["members"][0]
    data = {k: v for k, v in body.items() if k != "request_id"}
    registered = {"id": str(uuid.uuid4()), "type": "household.registered", "dataversion": 1, "source": "registry",
                  "subject": key.decode(), "time": "not a time",
                  "data": {**data, "household_id": key.decode(), "members": [{member["nik"]: member}],
                           "welfare": {member["name"]: True}}}
    assessed = {"type": "eligibility.assessed", "dataversion": 1, "subject": key.decode(),
                "data": {"household_id": key.decode(), member["nik"]: member["name"], "name": member["name"]}}
    return [(HOUSEHOLD.name, key, json.dumps(registered).encode()),
            (ELIGIBILITY.name, key, json.dumps(assessed).encode())]


async def produce(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def dead_letters(bootstrap: str) -> dict[str, list]:
    return {topic.name: [letter async for letter in read(bootstrap, topic.name)] for topic in TOPICS}


# ---- the search ----------------------------------------------------------------------------------

def patterns(value: str) -> re.Pattern:
    """The value as written raw, or as a JSON string escapes it (\\u00e9) in a log line or a body.

    A NIK-like value is matched as a whole run of digits: a 15-digit invalid NIK is not "found" inside
    the 16-digit NIK it was cut from (that one is looked for on its own).
    """
    written = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    alternatives = "|".join(re.escape(w) for w in sorted(written))
    return re.compile(rf"(?<!\d)(?:{alternatives})(?!\d)" if value[:1].isdigit() else alternatives)


def show(config: pytest.Config, line: str) -> None:
    """A line on the terminal even when the test passes (the lead reports these figures)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\n{line}")


def test_no_personal_data_in_logs_errors_metrics_webhooks_or_dead_letters(platform: Platform,
                                                                          collector: Collector,
                                                                          pytestconfig: pytest.Config):
    assert collector.registered and collector.errors and collector.poison, \
        "the generated households are registered by the test above, in the same run"
    bootstrap = platform.env["EJSIKA_KAFKA_BOOTSTRAP"]
    asyncio.run(produce(bootstrap, collector.poison))

    # every household assessed and recorded, scheduled, and the eligible ones sent to the agency
    auditor = platform.client("registry", role="auditor")
    ids = list(collector.registered)
    final = eventually(lambda: (s := {h: auditor.get(f"/households/{h}").json()["status"] for h in ids})
                       and "registered" not in s.values() and s, timeout=120)
    eligible = {h for h, status in final.items() if status == "eligible"}
    monitoring = platform.client("monitoring", role="auditor")
    # followed by monitoring (a household is scheduled only once admitted to its programme)
    eventually(lambda: all(monitoring.get(f"/households/{h}/visits").status_code == 200 for h in ids), timeout=60)
    education = Pseudonyms(platform.env["EJSIKA_PSEUDONYM_KEY"].encode())  # the agency knows families by reference
    references = {education.reference_of("dinas-pendidikan", uuid.UUID(h)) for h in eligible}
    received = eventually(lambda: (r := platform.received())
                          and references <= {n["reference"] for hook in r for n in hook["payload"]["notifications"]}
                          and r, timeout=120) if eligible else platform.received()
    keys = {key for _, key, _ in collector.poison}
    letters = eventually(lambda: (d := asyncio.run(dead_letters(bootstrap)))
                         and keys <= {x.key for x in d[HOUSEHOLD.name]} and keys <= {x.key for x in d[ELIGIBILITY.name]}
                         and d, timeout=60)
    time.sleep(1)  # the last log lines of the consumers

    sources: dict[str, str] = {}
    for path in sorted(platform.log_dir.glob("*.log")):
        sources[f"log {path.name}"] = path.read_text(errors="replace")
    for index, (label, text) in enumerate(collector.errors):
        sources[f"error answer #{index} to {label}"] = text
    for service in platform.ports:
        sources[f"metrics of {service}"] = httpx.get(f"{platform.url(service)}/metrics", timeout=10).text
    sources["webhooks received by the agency"] = json.dumps(received, ensure_ascii=False)
    for topic, found in letters.items():
        for letter in found:
            sources[f"headers of dead letter {topic}.dlq {letter.partition}:{letter.offset}"] = "\n".join(
                f"{name}: {value.decode(errors='replace')}" for name, value in letter.headers)

    # nothing vacuous: there was something to search in each kind of place
    assert all(len(sources[f"log {name}.log"]) > 1000 for name in platform.ports), "every service logged"
    assert len(collector.errors) >= collector.examples * 5, "every example drew error answers"
    assert any(n.startswith("headers of dead letter") for n in sources), "the poison events were dead-lettered"
    assert received, "the agency received webhooks"
    wanted = {nik: patterns(nik) for nik in collector.niks}
    wanted |= {name: patterns(name) for name in collector.names
               if len(name) >= MIN_NAME and not IDENTIFIER_LIKE.fullmatch(name)}
    leaks = [(where, value, match) for where, text in sources.items() for value, pattern in wanted.items()
             if (match := pattern.search(text))]
    summary = (f"privacy: {collector.examples} examples, {collector.requests} requests, {len(collector.registered)} "
               f"households registered ({len(eligible)} eligible), {len(received)} webhooks, {len(collector.errors)} "
               f"error answers, {sum(len(v) for v in letters.values())} dead letters; searched {len(collector.niks)} "
               f"NIKs and {len(wanted) - len(collector.niks)} names in {len(sources)} texts "
               f"({sum(len(t) for t in sources.values()) // 1024} KiB): {len(leaks)} found")
    show(pytestconfig, summary)
    by_place = Counter(re.sub(r" #\d+| \d+:\d+$", "", where) for where, _, _ in leaks)
    assert not leaks, f"{summary}\npersonal data found, by place: {dict(by_place)}\n" + "\n".join(
        f"- {'NIK' if value[:1].isdigit() else 'name'} {value!r} in {where}: "
        f"…{sources[where][max(0, m.start() - 160):m.end() + 60]}…".replace("\n", " | ")
        for where, value, m in leaks[:30])
