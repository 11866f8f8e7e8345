"""A household of a register file as the rows its registration stores and the event it announces, built
without models: the import's cost per household.

An import registers hundreds of thousands of households whose every value our own reader built
(`register_file`): validating each again through pydantic, making a UUID object per member and
serialising the event through its model cost three times the rest of the import. Here a household
the reader passed is checked with the registry's own rules (`domain.registration` checks the same:
programme and region, No. KK, each NIK's district and date, a NIK twice in the household, a pending
NIK that has one) and its event is written as the JSON `Event.to_bytes` writes for it (the unit tests
compare the two on a synthetic register, and validate it against the frozen JSON Schema).

Whatever this path is unsure of goes the general way (`registration_of_event`): the model is built,
`domain.registration.register` judges it, and its refusal is reported as for any registration.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from uuid import UUID

from ejsika_contracts import HouseholdRegisteredV2

from .domain.identifiers import InvalidIdentifier, check_kk, nik_digest, quality_flags
from .domain.regions import RegionError, programme_for
from .domain.registration import SOURCE
from .register_file import WELFARE_COLUMNS, FileHousehold
from .registrations import REQUEST_NAMESPACE

_REQUEST_NAMESPACE = REQUEST_NAMESPACE.bytes
_EVENT_TYPE = HouseholdRegisteredV2.event_type
_EVENT_VERSION = HouseholdRegisteredV2.version
_SPEC_VERSION = HouseholdRegisteredV2.model_fields["specversion"].default


@dataclass(slots=True)
class Registration:
    """One household ready to store: its rows by table, and its event as JSON."""

    file: FileHousehold
    household_id: str
    niks: tuple[str | None, ...]  # per member, in order: a clash with another household is reported there
    household: tuple  # households (id, programme, region_code, kk_number, address, welfare)
    members: list[tuple]  # members, as households.add_members copies them
    event_id: str
    event_json: str
    programme: str
    region_code: str
    day: date  # the registration's day in Asia/Jakarta: the enrolment's effective date


def household_id_for(request_id: UUID) -> int:
    """`registrations.household_id_for` as an integer: uuid5 without a UUID object (the same bits)."""
    digest = hashlib.sha1(_REQUEST_NAMESPACE + str(request_id).encode()).digest()
    value = int.from_bytes(digest[:16])
    value &= ~(0xc000 << 48)
    value |= 0x8000 << 48  # RFC 4122 variant
    value &= ~(0xf000 << 64)
    return value | (5 << 76)  # version 5


def uuid_text(value: int) -> str:
    hexa = "%032x" % value
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


def event_time(moment: datetime | None = None) -> str:
    """An event's `time` as pydantic writes an aware UTC datetime."""
    return (moment or datetime.now(timezone.utc)).isoformat().replace("+00:00", "Z")


def registration(file: FileHousehold, programme: str, correlation_id: str, nik_key: bytes, today: date,
                 time: str, day: date) -> Registration | None:
    """The household's registration, or None when a rule may be broken: the general path decides then."""
    body = file.registration
    region, kk_number = body["region_code"], body["kk_number"]
    try:
        programme_for(programme, region)
        check_kk(kk_number, today)
    except (RegionError, InvalidIdentifier):
        return None
    household_int = household_id_for(body["request_id"])
    household_id = uuid_text(household_int)
    kecamatan = region[:6]
    rows, described = [], []
    seen: set[str] = set()
    for position, member in enumerate(body["members"], start=1):
        nik, born, sex = member["nik"], member["birth_date"], member["sex"]
        flags: tuple[str, ...] = ()
        if nik is not None:
            if member["nik_status"] == "pending" or nik in seen:
                return None
            seen.add(nik)
            try:
                flags = quality_flags(nik, born, sex, today)
            except InvalidIdentifier:
                return None
        member_id = uuid_text(household_int ^ position)
        row = (household_id, position, member_id, nik, nik_digest(nik_key, nik) if nik else None, member["nik_status"],
               member["name"], sex, born, member["relation"], member["in_school"], member["pregnant"],
               member["disability"], None, list(flags), kecamatan)
        rows.append(row)
        described.append(_member_json(row))
    event_id = uuid_text(int.from_bytes(os.urandom(16)) & _RANDOM | _VERSION_4)
    every, observed = _welfare_json(body["welfare"])
    event_json = _EVENT % (event_id, time, household_id, correlation_id, household_id, programme, region, kk_number,
                           _string(body["address"]), ",".join(described), every)
    return Registration(file, household_id, tuple(row[3] for row in rows),
                        (household_id, programme, region, kk_number, body["address"], observed),
                        rows, event_id, event_json, programme, region, day)


# The event as `HouseholdRegisteredV2.to_bytes` writes it, field for field (tests/unit/test_import_rows.py).
_EVENT = ('{"id":"%s","type":"' + _EVENT_TYPE + '","source":"' + SOURCE + '","time":"%s","subject":"%s",'
          '"specversion":"' + _SPEC_VERSION + '","dataversion":' + str(_EVENT_VERSION) + ',"correlation_id":"%s",'
          '"causation_id":null,"data":{"household_id":"%s","version":1,"programme":"%s","region_code":"%s",'
          '"kk_number":"%s","address":%s,"members":[%s],"welfare":%s,"pendamping_id":null,"split_from":null}}')
_MEMBER = ('{"member_id":"%s","nik_status":"%s","nik":%s,"name":%s,"sex":"%s","birth_date":"%s","relation":"%s",'
           '"in_school":%s,"pregnant":%s,"disability":%s%s}')
_BOOLEAN = {True: "true", False: "false"}
_string = json.encoder.encode_basestring  # a JSON string, quoted and escaped, as pydantic writes it
_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _member_json(row: tuple) -> str:
    _, _, member_id, nik, _, status, name, sex, born, relation, in_school, pregnant, disability, cover, flags, _ = row
    extra = (f',"health_insurance":"{cover}"' if cover else "") + (f',"quality_flags":{_json(flags)}' if flags else "")
    return _MEMBER % (member_id, status, f'"{nik}"' if nik else "null", _string(name), sex, born.isoformat(), relation,
                      _BOOLEAN[in_school], _BOOLEAN[pregnant], _BOOLEAN[disability], extra)


_RANDOM = ~((0xf000 << 64) | (0xc000 << 48))
_VERSION_4 = (4 << 76) | (0x8000 << 48)  # uuid4's version and variant bits
_FIELD = {name: f'"{name}":' for name in WELFARE_COLUMNS}


def _welfare_json(welfare: dict[str, Any]) -> tuple[str, str]:
    """The welfare indicators as the event writes them (every field, null when not observed) and as the
    household's column holds them (the observed ones only), in the model's field order."""
    every, observed = [], []
    for name, value in welfare.items():
        if value is None:
            every.append(_FIELD[name] + "null")
            continue
        kind = value.__class__
        piece = _FIELD[name] + ("true" if value else "false") if kind is bool else _FIELD[name] + repr(value)
        every.append(piece)
        observed.append(piece)
    return "{" + ",".join(every) + "}", "{" + ",".join(observed) + "}"


def registration_of_event(file: FileHousehold, event: HouseholdRegisteredV2, nik_key: bytes, day: date) -> Registration:
    """The rows of a registration the general path (`domain.registration.register`) accepted."""
    data = event.data
    household_id, region = str(data.household_id), data.region_code
    rows = [(household_id, position, str(m.member_id), m.nik, nik_digest(nik_key, m.nik) if m.nik else None,
             m.nik_status, m.name, m.sex, m.birth_date, m.relation, m.in_school, m.pregnant, m.disability,
             m.health_insurance, list(m.quality_flags), region[:6])
            for position, m in enumerate(data.members, start=1)]
    return Registration(file, household_id, tuple(m.nik for m in data.members),
                        (household_id, data.programme, region, data.kk_number, data.address,
                         data.welfare.model_dump_json(exclude_none=True)),
                        rows, str(event.id), event.to_bytes().decode(), data.programme, region, day)
