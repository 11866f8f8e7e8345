"""Kemendagri region codes and the regions each programme serves."""

from __future__ import annotations

from dataclasses import dataclass


class RegionError(ValueError):
    pass


@dataclass(frozen=True)
class Programme:
    code: str
    name: str
    region_prefixes: tuple[str, ...]  # the province or regency/city codes it pays in


# Defaults for the two programmes of DOMAIN.md; more programmes are configuration, not code.
PROGRAMMES: dict[str, Programme] = {
    "jamsosratu": Programme("jamsosratu", "Jaminan Sosial Rakyat Banten Bersatu", ("36",)),
    "jscm": Programme("jscm", "Jaminan Sosial Cilegon Mandiri", ("3672",)),
}


def check_village_code(code: str) -> None:
    """PP.KK.SS.DDDD without dots: regency 01-69 or city 71-99; village 1xxx kelurahan, 2xxx desa."""
    if len(code) != 10 or not code.isdigit():
        raise RegionError("region_code must be a 10-digit Kemendagri village code")
    regency, district, village = int(code[2:4]), int(code[4:6]), code[6:]
    if not (1 <= regency <= 69 or 71 <= regency <= 99):
        raise RegionError("region_code has no valid regency/city part")
    if district == 0:
        raise RegionError("region_code has no valid kecamatan part")
    if village[0] not in "12":
        raise RegionError("region_code village part must start with 1 (kelurahan) or 2 (desa)")


def programme_for(code: str, region_code: str) -> Programme:
    programme = PROGRAMMES.get(code)
    if programme is None:
        raise RegionError(f"unknown programme {code!r}")
    if not region_code.startswith(programme.region_prefixes):
        raise RegionError(f"programme {code} does not serve region {region_code[:4]}")
    return programme
