"""Per-agency pseudonyms: the only names an agency ever has for a family or a member.

An agency refers to a family by a reference of its own: HMAC-SHA256 of the registry's id under a
key derived, per agency, from the service's pseudonym key (EJSIKA_PSEUDONYM_KEY). So the same
family has unrelated references at two agencies, a reference reveals nothing of the registry's id
(a keyed hash cannot be inverted or recomputed without the key), and it stays the same for as long
as the key does: the key must never be rotated without telling the agencies.

A hash cannot be read back, so every reference handed out is remembered (table `pseudonyms`) with
what it stands for, and `resolve` looks it up for that agency only: an agency answering about a
family refers to it by its reference, and another agency's reference resolves to nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

import asyncpg

Kind = Literal["household", "member"]
REFERENCE_LENGTH = 26  # base32 characters: 130 bits of the digest
REFERENCE_PATTERN = r"^[a-z2-7]{26}$"


class PseudonymKeyError(ValueError):
    """The pseudonym key is missing or too short (never shows the key)."""


@dataclass(frozen=True)
class Pseudonyms:
    key: bytes
    _agency_keys: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.key) < 32:
            raise PseudonymKeyError("EJSIKA_PSEUDONYM_KEY must hold at least 32 characters")

    def _agency_key(self, agency: str) -> bytes:
        # Derived once per agency: there are a handful, and each notification needs one or more.
        key = self._agency_keys.get(agency)
        if key is None:
            key = self._agency_keys[agency] = hmac.new(self.key, b"agency:" + agency.encode(), hashlib.sha256).digest()
        return key

    def reference_of(self, agency: str, household_id: UUID) -> str:
        """The agency's reference of a family."""
        return self._reference(agency, "household", household_id)

    def member_reference_of(self, agency: str, member_id: UUID) -> str:
        """The agency's reference of a member (a different domain from families: never equal)."""
        return self._reference(agency, "member", member_id)

    def _reference(self, agency: str, kind: Kind, internal: UUID) -> str:
        digest = hmac.new(self._agency_key(agency), f"{kind}:".encode() + internal.bytes, hashlib.sha256).digest()
        return base64.b32encode(digest).decode().lower()[:REFERENCE_LENGTH]


@dataclass(frozen=True)
class Handed:
    """A reference handed to an agency, and what it stands for (kept to resolve answers)."""

    agency: str
    reference: str
    kind: Kind
    internal_id: UUID


async def remember(conn: asyncpg.Connection, handed: Iterable[Handed]) -> None:
    """Keep the references of a batch of notifications, in one statement."""
    rows = {(h.agency, h.reference): h for h in handed}
    if rows:
        await conn.execute(
            "INSERT INTO pseudonyms (agency, reference, kind, internal_id)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[]) ON CONFLICT DO NOTHING",
            [h.agency for h in rows.values()], [h.reference for h in rows.values()],
            [h.kind for h in rows.values()], [h.internal_id for h in rows.values()],
        )


async def resolve(conn: asyncpg.Connection | asyncpg.Pool, agency: str, reference: str,
                  kind: Kind = "household") -> UUID | None:
    """What `reference` stands for at `agency` (None if the agency was never handed it)."""
    return await conn.fetchval(
        "SELECT internal_id FROM pseudonyms WHERE agency = $1 AND reference = $2 AND kind = $3",
        agency, reference, kind,
    )
