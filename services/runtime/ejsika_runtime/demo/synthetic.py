"""Synthetic Banten families with well-formed NIK, No. KK and region codes, for demos and tests.

Deterministic for a seed. No real person's data: names come from a short list, NIK serials from
a counter. The villages and districts are real (the registry checks that they exist).
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

# Kecamatan of Kota Cilegon (36.72.01-08) and a few of Kab. Serang (Kramatwatu, Bojonegara) and Kab.
# Pandeglang (Sumur, Cimanggu), each with the codes of its villages: from its first, that many
# (kelurahan 1xxx, desa 2xxx; Kepmendagri 300.2.2-2138/2025).
VILLAGES = {
    "367201": (1001, 6), "367202": (1001, 5), "367203": (1001, 4), "367204": (1001, 6),
    "367205": (1001, 5), "367206": (1001, 4), "367207": (1001, 6), "367208": (1001, 7),
    "360405": (2001, 15), "360407": (2001, 11), "360101": (2001, 7), "360102": (2001, 12),
}
DISTRICTS = list(VILLAGES)
GIVEN_NAMES = ["Ahmad", "Siti", "Budi", "Dewi", "Rudi", "Nur", "Agus", "Sri", "Eko", "Wati", "Dedi", "Rina"]
CRITERIA = [
    "earth_or_bamboo_floor", "bamboo_or_unplastered_walls", "no_private_toilet", "no_electricity",
    "unprotected_water", "cooks_with_wood_or_kerosene", "protein_at_most_weekly", "one_set_of_clothes_a_year",
    "at_most_two_meals_a_day", "cannot_pay_clinic", "head_low_income", "head_primary_education_or_less",
    "no_savings_over_500k",
]


class Families:
    def __init__(self, seed: int = 1, today: date | None = None) -> None:
        self.random = random.Random(seed)
        self.today = today or date.today()
        self.serial = self.random.randrange(0, 5000)
        self.issued: set[str] = set()

    def _nik(self, district: str, born: date, sex: str) -> str:
        day = born.day + (40 if sex == "F" else 0)
        while True:
            self.serial += 1
            nik = f"{district}{day:02d}{born.month:02d}{born.year % 100:02d}{self.serial % 10000:04d}"
            if nik not in self.issued:
                self.issued.add(nik)
                return nik

    def _born(self, min_age: int, max_age: int) -> date:
        return self.today - timedelta(days=self.random.randint(min_age * 365 + 1, max_age * 365 - 1))

    def _member(self, district: str, relation: str, sex: str, born: date, **flags) -> dict:
        return {
            "nik": self._nik(district, born, sex),
            "name": f"{self.random.choice(GIVEN_NAMES)} {self.random.choice(GIVEN_NAMES)}",
            "sex": sex,
            "birth_date": born.isoformat(),
            "relation": relation,
            **flags,
        }

    def registration(self, programme: str | None = None) -> dict:
        """One registration request body, as a caseworker app sends it."""
        district = self.random.choice(DISTRICTS)
        if programme is None:
            programme = "jscm" if district.startswith("3672") and self.random.random() < 0.5 else "jamsosratu"
        elif programme == "jscm":
            district = self.random.choice(DISTRICTS[:8])
        first, count = VILLAGES[district]
        village = f"{district}{first + self.random.randrange(count)}"
        head_sex = self.random.choice("MF")
        members = [self._member(district, "head", head_sex, self._born(25, 70))]
        if self.random.random() < 0.8:
            spouse_sex = "F" if head_sex == "M" else "M"
            members.append(self._member(district, "spouse", spouse_sex, self._born(22, 65),
                                        pregnant=spouse_sex == "F" and self.random.random() < 0.1))
        for _ in range(self.random.randint(0, 4)):
            age_min = self.random.randint(0, 20)
            sex = self.random.choice("MF")
            members.append(self._member(district, "child", sex, self._born(age_min, age_min + 1),
                                        in_school=6 < age_min <= 20 and self.random.random() < 0.9))
        issued = self._born(1, 15)
        kk = f"{district}{issued.day:02d}{issued.month:02d}{issued.year % 100:02d}{self.random.randrange(10000):04d}"
        deprivations = self.random.randint(3, 13)
        welfare = {name: index < deprivations for index, name in enumerate(self.random.sample(CRITERIA, len(CRITERIA)))}
        welfare["floor_area_per_person_m2"] = round(self.random.uniform(4, 20), 1)
        return {
            "request_id": str(uuid.UUID(int=self.random.getrandbits(128), version=4)),
            "programme": programme,
            "region_code": village,
            "kk_number": kk,
            "address": f"Kampung {self.random.choice(GIVEN_NAMES)} RT {self.random.randint(1, 15):02d}",
            "members": members,
            "welfare": welfare,
        }

    def registrations(self, count: int, programme: str | None = None) -> list[dict]:
        return [self.registration(programme) for _ in range(count)]
