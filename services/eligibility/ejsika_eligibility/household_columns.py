"""A programme's households read as columns: what the rule change and the what-if assess in bulk.

One binary COPY of the inputs as PostgreSQL packed them when they were written (migration 009: the welfare
indicators as floats, NaN where not observed, then the members as fixed-width records), which numpy reads as
they come: no JSON is parsed, and no Python object is made per household or member (only per escalation).

The what-if reads a narrower copy instead (`State`): migration 016's `household_state`, kept by triggers on every
write of `households` (cut from the packed inputs since migration 018), holds only what the scorer and the ranking
read (~140 bytes a household where the wide row is ~1.5 kB). PostgreSQL aggregates it into two values, the
fixed-width part of every household and then every member (as the packed inputs hold them), which numpy reads
without a loop.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import numpy as np

from .domain.columns import Households
from .domain.rules import INDICATORS


def _small_pages() -> None:
    """The columns of a province (hundreds of MB a what-if or rule-change chunk, made afresh each time) are first
    touched in page faults. numpy asks the kernel for transparent huge pages on large arrays (madvise), and a kernel
    whose THP defrag is "madvise" (the default) then compacts memory inside those faults: a what-if's unpacking and
    scoring cost about half again as much CPU on fresh memory as on memory reused (tests/benchmark/what_if.py).
    Small pages, unless NUMPY_MADVISE_HUGEPAGE says otherwise."""
    setting = getattr(getattr(np, "_core", None), "multiarray", None)
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ and hasattr(setting, "_set_madvise_hugepage"):
        setting._set_madvise_hugepage(False)


_small_pages()
EPOCH = np.datetime64("2000-01-01", "D")
_HEADER = 19  # PGCOPY signature (11), flags (4), header extension length (4)
_TRAILER = 2

# One row per household, in id order (the walk of a rule change resumes from an id): its id, whether active, and
# its inputs as migration 009 packs them on each write. Every field is fixed-width but the packed inputs, whose
# fixed part comes first.
ROWS = (
    "SELECT household_id, coalesce(enrolment_status = 'active', false), assessed_columns FROM households"
    " WHERE programme = $1 AND household_id > $2 ORDER BY household_id LIMIT $3"
)


def _row(fields: list[tuple[str, str]]) -> np.dtype:
    return np.dtype([("count", ">i2")] + [x for name, kind in fields for x in ((f"{name}_len", ">i4"), (name, kind))])


_FIXED = np.dtype(_row([("id", "V16"), ("active", "?")]).descr + [("packed_len", ">i4"), ("welfare_version", ">i8")]
                  + [(f"w{i}", ">f8") for i in range(len(INDICATORS))] + [("members", ">i4")])
_PREFIX = _FIXED.fields["welfare_version"][1]  # the part of a row before its packed inputs
_MEMBER_RECORD = np.dtype([("member_id", "V16"), ("has_id", "?"), ("born", ">i4"), ("sex", ">i2"), ("in_school", "?"),
                           ("pregnant", "?"), ("disability", "?")])


async def _copy(conn: asyncpg.Connection, *args) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None]]:
    """The households' fixed fields, their member records one after the other (with each one's household), and
    their escalation kinds."""
    buffer = io.BytesIO()
    await conn.copy_from_query(ROWS, *args, output=buffer, format="binary")
    data = buffer.getbuffer()
    if int.from_bytes(data[15:19], "big") != 0:
        raise ValueError("unexpected COPY header extension")
    # rows differ in length by their members (and escalation) only: a walk over the rows finds where each starts
    starts, at, end = [], _HEADER, len(data) - _TRAILER
    length, before = struct.Struct(">i").unpack_from, _PREFIX - 4
    while at < end:
        starts.append(at)
        at += _PREFIX + length(data, at + before)[0]
    if not starts:
        return np.zeros(0, _FIXED), np.zeros(0, _MEMBER_RECORD), np.zeros(0, dtype=np.int64), []
    raw = np.frombuffer(data, dtype=np.uint8)
    begin = np.asarray(starts, dtype=np.int64)
    fixed = raw[begin[:, None] + np.arange(_FIXED.itemsize)].reshape(-1).view(_FIXED)
    count = fixed["members"].astype(np.int64)
    size = count * _MEMBER_RECORD.itemsize
    offsets = np.repeat(begin + _FIXED.itemsize - np.r_[0, np.cumsum(size)[:-1]], size) + np.arange(int(size.sum()))
    members = raw[offsets].view(_MEMBER_RECORD)
    owner = np.repeat(np.arange(len(starts)), count)
    kinds: list[str | None] = [None] * len(starts)
    kind_size = fixed["packed_len"].astype(np.int64) + _PREFIX - _FIXED.itemsize - size
    for i in np.nonzero(kind_size)[0].tolist():  # the few households with an escalation
        kind_at = starts[i] + _FIXED.itemsize + int(size[i])
        kinds[i] = bytes(data[kind_at:kind_at + int(kind_size[i])]).decode()
    return fixed, members, owner, kinds


def _s16(values: np.ndarray) -> np.ndarray:
    return np.frombuffer(values.tobytes(), dtype="S16") if len(values) else np.zeros(0, dtype="S16")


async def read(conn: asyncpg.Connection, programme: str, after: UUID = UUID(int=0), limit: int = 2**31 - 1
               ) -> Households:
    """Up to `limit` households of `programme` after the id `after`, in id order, with their members."""
    households, members, owner, kinds = await _copy(conn, programme, after, limit)
    return Households(
        ids=_s16(households["id"]), active=households["active"].copy(), escalation=np.asarray(kinds, dtype=object),
        welfare_version=households["welfare_version"].astype(np.int64),
        welfare={name: households[f"w{i}"].astype(np.float64) for i, name in enumerate(INDICATORS)},
        member_household=owner.astype(np.int64), member_id=_s16(members["member_id"]),
        member_has_id=members["has_id"].copy(), birth_date=EPOCH + members["born"].astype(np.int64),
        sex=members["sex"].astype(np.int8), in_school=members["in_school"].copy(),
        pregnant=members["pregnant"].copy(), disability=members["disability"].copy())


def uuid_of(id_bytes: bytes) -> UUID:
    """The uuid of an S16 id (numpy strips trailing zero bytes of S values)."""
    return UUID(bytes=bytes(id_bytes).ljust(16, b"\0"))


async def read_all(conn: asyncpg.Connection, programme: str, chunk: int = 50_000) -> Households:
    """Every household of `programme`, read a chunk at a time (the unpacking of a chunk indexes each of its bytes:
    a whole province at once would take gigabytes); run it in one snapshot (a repeatable-read transaction)."""
    parts, after = [], UUID(int=0)
    while len(part := await read(conn, programme, after, chunk)):
        parts.append(part)
        after = uuid_of(part.ids[-1])
        if len(part) < chunk:
            break
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return await read(conn, programme, after, 0)
    first = np.cumsum([0] + [len(p) for p in parts[:-1]])
    return Households(
        ids=np.concatenate([p.ids for p in parts]), active=np.concatenate([p.active for p in parts]),
        escalation=np.concatenate([p.escalation for p in parts]),
        welfare_version=np.concatenate([p.welfare_version for p in parts]),
        welfare={name: np.concatenate([p.welfare[name] for p in parts]) for name in parts[0].welfare},
        member_household=np.concatenate([p.member_household + f for p, f in zip(parts, first)]),
        **{name: np.concatenate([getattr(p, name) for p in parts]) for name in (
            "member_id", "member_has_id", "birth_date", "sex", "in_school", "pregnant", "disability")})


# Migration 016's layout of `household_state.fixed`: the numeric indicators as floats, the yes/no ones as bits;
# its `members` are the packed inputs' member records (migration 018).
NUMERIC = tuple(name for name, numeric in INDICATORS.items() if numeric)
YES_NO = tuple(name for name, numeric in INDICATORS.items() if not numeric)
ENROLMENTS = (None, "candidate", "active", "suspended", "exited")  # the codes of `State.enrolment`
_STATE = np.dtype([("region", ">i4"), ("enrolment", ">i2"), ("registered_on", ">i4")]
                  + [(name, ">f8") for name in NUMERIC] + [("observed", ">u4"), ("yes", ">u4"), ("members", ">i2")])


@dataclass(frozen=True)
class State:
    """The narrow state of many households (in the order PostgreSQL aggregated them), with their members."""

    region: np.ndarray  # int32 kabupaten/kota code, e.g. 3601 (0 without a region)
    enrolment: np.ndarray  # int8 index into ENROLMENTS
    registered_on: np.ndarray  # int32 days since 2000-01-01
    welfare: dict[str, np.ndarray]  # indicator -> float64, NaN where not observed, booleans as 1.0/0.0
    member_household: np.ndarray  # (m,) int64, non-decreasing
    birth_date: np.ndarray  # datetime64[D]
    sex: np.ndarray  # int8 index into SEXES
    in_school: np.ndarray
    pregnant: np.ndarray
    disability: np.ndarray

    def __len__(self) -> int:
        return len(self.region)

    member_columns = Households.member_columns  # the same member columns, for the same scorer

    @classmethod
    def unpack(cls, fixed: bytes, members: bytes | None) -> State:
        """The households of `fixed` (each one's `household_state.fixed`, one after the other) and, when given,
        their members (each household's `members`, in the same order); without them, no household has any."""
        rows = np.frombuffer(fixed, dtype=_STATE)
        welfare = {name: rows[name].astype(np.float64) for name in NUMERIC}
        observed, yes = rows["observed"].astype(np.uint32), rows["yes"].astype(np.uint32)
        for k, name in enumerate(YES_NO):
            welfare[name] = np.where((observed >> k) & 1 == 1, ((yes >> k) & 1).astype(np.float64), np.nan)
        count = rows["members"].astype(np.int64) if members is not None else np.zeros(len(rows), dtype=np.int64)
        people = np.frombuffer(members or b"", dtype=_MEMBER_RECORD)
        if len(people) != int(count.sum()):
            raise ValueError("the members do not add up to the households' counts")
        return cls(region=rows["region"].astype(np.int32), enrolment=rows["enrolment"].astype(np.int8),
                   registered_on=rows["registered_on"].astype(np.int32), welfare=welfare,
                   member_household=np.repeat(np.arange(len(rows), dtype=np.int64), count),
                   birth_date=EPOCH + people["born"].astype(np.int64), sex=people["sex"].astype(np.int8),
                   in_school=people["in_school"].copy(), pregnant=people["pregnant"].copy(),
                   disability=people["disability"].copy())
