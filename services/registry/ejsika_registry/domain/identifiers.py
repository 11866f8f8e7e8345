"""NIK and No. KK: what their 16 digits say, and what the family declares that they contradict.

A NIK is `PPKKSS DDMMYY NNNN`: the district of first registration, the birth date with day + 40 for
women, a serial. Refused, each by its rule: not 16 digits (`nik_format`), a district no table knows
(`nik_district`), a day and month that are no date in any century (`nik_birth_date`).

The two-digit year cannot say its century. Read against today, a 100-year-old's `...26` is 2026: so
the century is the one of the declared birth date, and what then disagrees with the declaration is
not a refusal but a data-quality flag (`nik_birth_date_mismatch`, `nik_sex_mismatch`) kept on the
member for an operator to review: an office typo must not cost a family its help.

The NIK's district is where the person was first registered, often another province than the
household's village: it is checked to exist, not to match.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from ejsika_runtime.programme_time import programme_today

from .regions import is_district

NIK_BIRTH_DATE_MISMATCH = "nik_birth_date_mismatch"
NIK_SEX_MISMATCH = "nik_sex_mismatch"


class InvalidIdentifier(ValueError):
    """Raised with the rule that failed and a message that never repeats the identifier itself."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule


@dataclass(frozen=True)
class NikFacts:
    region: str  # PPKKSS: province, regency/city, district of registration
    birth_date: date  # in the declared century when one is given, else the latest not after today
    sex: str  # F or M

    def quality_flags(self, birth_date: date, sex: str) -> tuple[str, ...]:
        """What the declared birth date and sex contradict in the NIK."""
        flags = []
        if (birth_date.day, birth_date.month, birth_date.year % 100) != \
                (self.birth_date.day, self.birth_date.month, self.birth_date.year % 100):
            flags.append(NIK_BIRTH_DATE_MISMATCH)
        if sex != self.sex:
            flags.append(NIK_SEX_MISMATCH)
        return tuple(flags)


@lru_cache(maxsize=1 << 17)  # an import reads millions of NIKs, of some 36,500 birth days a century
def _date_in_century(yy: int, month: int, day: int, today: date, century: int | None) -> date | None:
    """DDMMYY as a date: in `century` if given and possible, else the latest century not after today."""
    for base in ([century] if century is not None else []) + [2000, 1900]:
        try:
            candidate = date(base + yy, month, day)
        except ValueError:
            continue
        if base == century or candidate <= today:
            return candidate
    return None


def read_nik(value: str, today: date | None = None, *, born: date | None = None) -> NikFacts:
    """The facts of a NIK; `born`, the declared birth date, gives the century of its year."""
    if len(value) != 16 or not (value.isascii() and value.isdigit()):
        raise InvalidIdentifier("nik_format", "NIK must be 16 digits")
    if not is_district(value[:6]):
        raise InvalidIdentifier("nik_district", "NIK is not valid: no district has its first six digits")
    day, month, yy = int(value[6:8]), int(value[8:10]), int(value[10:12])
    sex = "F" if day > 40 else "M"
    century = born.year // 100 * 100 if born is not None else None
    birth = _date_in_century(yy, month, day - 40 if sex == "F" else day, today or programme_today(), century)
    if birth is None:
        raise InvalidIdentifier("nik_birth_date", "NIK holds no possible birth date")
    return NikFacts(region=value[:6], birth_date=birth, sex=sex)


def quality_flags(nik: str, born: date, sex: str, today: date | None = None) -> tuple[str, ...]:
    """`read_nik(nik, born=born).quality_flags(born, sex)`, for a declared birth date that is plausible.

    When the NIK's DDMMYY is the declared birth day, its century is the declared one and nothing but the
    sex can disagree: told by comparing digits, without a date (the import checks millions of NIKs).
    Raises InvalidIdentifier as `read_nik` does.
    """
    if len(nik) == 16 and nik.isascii() and nik.isdigit() and is_district(nik[:6]):
        day = int(nik[6:8])
        female = day > 40
        if (day - 40 if female else day, int(nik[8:10]), int(nik[10:12])) == (born.day, born.month, born.year % 100):
            return (NIK_SEX_MISMATCH,) if sex != ("F" if female else "M") else ()
    return read_nik(nik, today, born=born).quality_flags(born, sex)


def check_kk(value: str, today: date | None = None) -> None:
    """A No. KK is `PPKKSS DDMMYY NNNN`: the district that issued it, the issue date, a serial."""
    if len(value) != 16 or not (value.isascii() and value.isdigit()):
        raise InvalidIdentifier("kk_format", "No. KK must be 16 digits")
    if not is_district(value[:6]):
        raise InvalidIdentifier("kk_district", "No. KK is not valid: no district has its first six digits")
    day, month, yy = int(value[6:8]), int(value[8:10]), int(value[10:12])
    if _date_in_century(yy, month, day, today or programme_today(), None) is None:
        raise InvalidIdentifier("kk_issue_date", "No. KK holds no valid issue date")


def nik_digest(key: bytes, nik: str) -> bytes:
    """The keyed hash by which a data-subject request finds a person without a new clear-text index.

    HMAC-SHA256: without the key, the 10^16 possible NIKs cannot be hashed to reverse a digest.
    """
    return hmac.digest(key, nik.encode(), hashlib.sha256)
