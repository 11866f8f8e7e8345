"""Likely duplicates the NIK did not catch: the same person registered twice, once without a NIK or
with a mistyped one, under a name spelled another way.

Two active members of different households are a candidate pair when they share a birth date, live
in the same kecamatan, and their names are similar enough. "The same or a neighbouring village" is
approximated by the same kecamatan (the first 6 digits of the village code): the region tables hold
no neighbourhood, and a kecamatan holds a village and most of its neighbours. The database blocks
on birth date and kecamatan; this module scores the names of the few pairs left and says why.

Names are compared as BNBA lists write them: in any case, with stray punctuation ("MAWARDI.Z"),
words swapped, and a given name shortened to its initial ("M. YUSUF"). The matcher is RapidFuzz.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from rapidfuzz import fuzz

# Below this a pair is not proposed. 0.85 keeps "SITI AMINAH"/"SITI AMINA" (0.95) and drops siblings'
# "BUDI SANTOSO"/"DEWI SANTOSO" (0.83); a setting of the registry (EJSIKA_DUPLICATE_NAME_SIMILARITY).
DEFAULT_THRESHOLD = 0.85

Status = Literal["open", "merged", "dismissed"]
# Why a pair is proposed: every pair shares the first three; the last says how the NIKs stand.
Reason = Literal["same_birth_date", "same_kecamatan", "similar_names", "initials_expanded", "nik_missing",
                 "nik_differs"]

_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")


def normal_name(name: str) -> str:
    """Upper case, accents and punctuation gone, one space between words: "Mawardi.z " -> "MAWARDI Z"."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_ALNUM.sub(" ", plain.upper()).strip()


def _expand_initials(words: list[str], other: list[str]) -> tuple[list[str], bool]:
    """Each one-letter word of `words` read as the first unused word of `other` with that initial; not
    in a name of initials only, which says too little to stand for any name."""
    if all(len(w) == 1 for w in words):
        return words, False
    unused = [w for w in other if len(w) > 1]
    expanded, changed = [], False
    for word in words:
        match = next((w for w in unused if len(word) == 1 and w.startswith(word)), None)
        if match is None:
            expanded.append(word)
        else:
            unused.remove(match)
            expanded.append(match)
            changed = True
    return expanded, changed


@dataclass(frozen=True)
class NameMatch:
    score: float  # 0..1
    initials_expanded: bool


def name_similarity(a: str, b: str) -> NameMatch:
    """How alike two names are, 0..1: the best of their words in any order and their letters run
    together ("NUR HAYATI"/"NURHAYATI"), after reading each initial as the other name's word."""
    words_a, words_b = normal_name(a).split(), normal_name(b).split()
    if not words_a or not words_b:
        return NameMatch(0.0, False)
    words_a, expanded_a = _expand_initials(words_a, words_b)
    words_b, expanded_b = _expand_initials(words_b, words_a)
    left, right = " ".join(words_a), " ".join(words_b)
    score = max(fuzz.token_sort_ratio(left, right, processor=None),
                fuzz.ratio(left.replace(" ", ""), right.replace(" ", ""), processor=None))
    return NameMatch(round(score / 100, 4), expanded_a or expanded_b)


@dataclass(frozen=True)
class Member:
    """One side of a pair, as the database's blocking found it (same birth date and kecamatan)."""

    member_id: UUID
    household_id: UUID
    name: str
    has_nik: bool


@dataclass(frozen=True)
class Candidate:
    """A pair to review; `a` is the member whose id is the smaller, so a pair has one spelling."""

    a: Member
    b: Member
    score: float
    reasons: tuple[Reason, ...]


def candidate(one: Member, other: Member, threshold: float = DEFAULT_THRESHOLD) -> Candidate | None:
    """The pair if their names are similar enough; None otherwise, or for a member and themselves."""
    if one.member_id == other.member_id or one.household_id == other.household_id:
        return None
    match = name_similarity(one.name, other.name)
    if match.score < threshold:
        return None
    a, b = sorted((one, other), key=lambda m: m.member_id)
    reasons: list[Reason] = ["same_birth_date", "same_kecamatan", "similar_names"]
    if match.initials_expanded:
        reasons.append("initials_expanded")
    reasons.append("nik_differs" if a.has_nik and b.has_nik else "nik_missing")
    return Candidate(a, b, match.score, tuple(reasons))


def candidates(pairs: Sequence[tuple[Member, Member]], threshold: float = DEFAULT_THRESHOLD) -> list[Candidate]:
    """Each pair once (the blocking finds a pair from both sides when both households were checked)."""
    found: dict[tuple[UUID, UUID], Candidate] = {}
    for one, other in pairs:
        pair = candidate(one, other, threshold)
        if pair is not None:
            found.setdefault((pair.a.member_id, pair.b.member_id), pair)
    return list(found.values())


class Undecidable(ValueError):
    """The decision does not apply to this pair; `rule` names why, never a person's data."""

    def __init__(self, field: str, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.rule, self.reason = field, rule, reason


def kept_and_ended(a: UUID, b: UUID, keep: UUID) -> tuple[UUID, UUID]:
    """A merge keeps one member of the pair and ends the other's membership: (kept, ended)."""
    if keep == a:
        return a, b
    if keep == b:
        return b, a
    raise Undecidable("keep_member_id", "pair_member", "keep_member_id must be one of the pair's two members")

