"""NIK and No. KK: what their 16 digits say, checked against what the family declares.

The province and regency of registration are checked against python-stdnum's database of
Indonesian regions. Its `validate` is not called: its birth-date century is wrong for the young
(it reads 05 as 1905), so the birth date is decoded here against today's date, and its region
lookup scans a table for each NIK, which was most of the cost of an upload. The lookup is made
once per regency instead (Indonesia has about 500).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from stdnum import numdb


class InvalidIdentifier(ValueError):
    """Raised with a message that never repeats the identifier itself."""


@dataclass(frozen=True)
class NikFacts:
    region: str  # PPKKSS: province, regency/city, district of registration
    birth_date: date
    sex: str  # F or M


@lru_cache(maxsize=2048)
def is_known_regency(code: str) -> bool:
    """Whether the 4 digits PPKK (province, regency or city) are a region python-stdnum knows."""
    return bool(numdb.get("id/loc").info(code)[0][1])


def _resolve_century(yy: int, month: int, day: int, today: date) -> date:
    candidate = date(2000 + yy, month, day)
    return candidate if candidate <= today else date(1900 + yy, month, day)


def read_nik(value: str, today: date | None = None) -> NikFacts:
    today = today or date.today()
    if len(value) != 16 or not value.isdigit():
        raise InvalidIdentifier("NIK must be 16 digits")
    if not is_known_regency(value[:4]):
        raise InvalidIdentifier("NIK is not valid: unknown province or regency of registration")
    day, month, yy = int(value[6:8]), int(value[8:10]), int(value[10:12])
    sex = "F" if day > 40 else "M"
    try:
        born = _resolve_century(yy, month, day - 40 if sex == "F" else day, today)
    except ValueError:
        raise InvalidIdentifier("NIK holds no valid birth date") from None
    return NikFacts(region=value[:6], birth_date=born, sex=sex)


def check_kk(value: str, today: date | None = None) -> None:
    today = today or date.today()
    if len(value) != 16 or not value.isdigit():
        raise InvalidIdentifier("No. KK must be 16 digits")
    day, month, yy = int(value[6:8]), int(value[8:10]), int(value[10:12])
    try:
        _resolve_century(yy, month, day, today)
    except ValueError:
        raise InvalidIdentifier("No. KK holds no valid issue date") from None


def nik_digest(key: bytes, nik: str) -> bytes:
    """The keyed hash by which a data-subject request finds a person without a new clear-text index.

    HMAC-SHA256: without the key, the 10^16 possible NIKs cannot be hashed to reverse a digest.
    """
    return hmac.new(key, nik.encode(), hashlib.sha256).digest()
