"""A synthetic Banten register in the shape of `register_file`: for load tests, demos and the import's tests.

No personal data of real people: names are drawn from short lists of common Indonesian names, the
villages are the real ones of `domain.regions.VILLAGES` (all eight kabupaten/kota of Banten, weighted
by population), NIKs and No. KKs are built as the registry reads them and unique in the whole file.

The file holds what an import meets in a real export:

- harmless spreadsheet dress the reader undoes: mixed case, stray spaces, `L`/`LAKI-LAKI`, dates as
  D/M/YYYY or YYYY-MM-DD, NIKs with a trailing `.0`, dotted village codes, `1.300` VA, decimal commas;
- newborns without a NIK yet (`status_nik` pending), which are valid rows;
- in `bad_rate` of the households one broken row: a NIK that lost a digit or became `3.60101E+15`,
  an impossible birth date, a village no table knows, no head, a pregnant man;
- in `duplicate_rate` of the households a likely duplicate: the head of a recent household again, same
  birth date and sex, the name with a typo or abbreviated (`MAWARDI.Z`), another NIK, in the same or
  the next village of the kecamatan.

Deterministic: the same arguments give the same bytes (one `random.Random(seed)`, every table
sorted, dates counted from `REFERENCE_DATE`, never from today). Streaming: one household at a time,
in memory that does not grow with the file (the NIK serial counters are fixed-size arrays).

    python -m ejsika_registry.synthetic --households 1000 --seed 7 -o register.csv
"""

from __future__ import annotations

import argparse
import os
import sys
from array import array
from bisect import bisect
from collections.abc import Iterator
from datetime import date
from itertools import accumulate
from random import Random

from .domain.regions import VILLAGES
from .register_file import WELFARE_COLUMNS

REFERENCE_DATE = date(2026, 1, 1)
_REF = REFERENCE_DATE.toordinal()
_YEAR = 365.25
#: Birth dates lie within a century of the reference date, so a NIK's DDMMYY names one day only.
_BIRTH_SPAN = 36_500
#: Family cards issued in the 20 years before the reference date, the last one a month before it.
_KK_SPAN = 7_300

# Population of the 2020 census, in thousands: kabupaten draw households in proportion.
_POPULATION = {"3601": 1273, "3602": 1387, "3603": 3246, "3604": 1623,
               "3671": 1895, "3672": 435, "3673": 692, "3674": 1354}

HEADER = ("id_dtks", "no_kk", "kode_desa", "alamat", "program", "desil", *WELFARE_COLUMNS,
          "nik", "status_nik", "nama", "jenis_kelamin", "tanggal_lahir", "hubungan",
          "sekolah", "hamil", "disabilitas", "pekerjaan")

_MALE = ("AHMAD", "MUHAMMAD", "MAWARDI", "SUPRIYADI", "AGUS", "DEDI", "ASEP", "UJANG", "JAJANG", "HERMAN",
         "SAEPUDIN", "SUHENDI", "RUDI", "BUDI", "SLAMET", "HASAN", "ROHMAT", "NURDIN", "SAMSUDIN", "JUHANA",
         "MULYADI", "SUKARDI", "ENDANG", "IWAN", "YAYAN", "ADE", "DADANG", "ROBI", "FIRMAN", "RIZKI", "ILHAM",
         "FAJAR", "ARIF", "HENDRA", "SUPARMAN", "KHOLID", "MAHMUD", "ABDUL", "SOLEH", "TATANG")
_FEMALE = ("SITI", "NURHAYATI", "ENENG", "IMAS", "TITIN", "YATI", "ROSMIATI", "AISYAH", "FATIMAH", "DEWI",
           "SRI", "NENG", "EUIS", "LILIS", "IPAH", "MASITOH", "KHODIJAH", "RATNA", "YULIANTI", "SUMIATI",
           "NURLAELA", "ROHAYATI", "ENTIN", "AAN", "JUBAEDAH", "MAEMUNAH", "RINA", "WATI", "SALSABILA",
           "NAYLA", "ZAHRA", "PUTRI", "INDAH", "RAHMAWATI", "HALIMAH", "SAFITRI", "MULYANI", "ANI")
_SECOND = ("ZAKARIA", "SOBARI", "HIDAYAT", "RAHMAN", "SUPRIATNA", "SAPUTRA", "KURNIAWAN", "FAUZI", "MULYANA",
           "SETIAWAN", "SURYANA", "HAMDANI", "SOFYAN", "JAELANI", "MAULANA", "RAMDANI", "NURJAMAN", "FIRDAUS",
           "HAKIM", "SAEFULLAH", "SUNARYA", "KOSASIH", "ROSIDI", "SAHRONI", "WAHYUDI", "ARIFIN")
_KAMPUNG = ("SUKAMAJU", "CIBEUREUM", "SUKARAME", "CIKONENG", "PASIR ANGIN", "BOJONG", "CILAME", "MEKARSARI",
            "KADU GEDE", "BABAKAN", "CIPUTAT", "KRAMAT", "PANYIRAPAN", "TEGAL", "LEUWIDAMAR", "CIRUAS",
            "PASIR GADUNG", "SUKAJAYA", "CIJAKU", "KARANGANYAR", "CURUG", "CIKUYA", "SINDANGSARI", "TAMIANG")
_STREET = ("MELATI", "MAWAR", "KENANGA", "FLAMBOYAN", "MERDEKA", "PEMUDA", "RAYA SERANG", "KH. ABDUL FATAH",
           "SULTAN AGENG", "MASJID", "PERINTIS", "NUSANTARA")
_HEAD_WORK_POOR = ("BURUH HARIAN LEPAS", "PETANI", "BURUH TANI", "NELAYAN", "PEDAGANG KECIL")
_HEAD_WORK = ("WIRASWASTA", "KARYAWAN SWASTA", "PEDAGANG", "SOPIR", "TUKANG BANGUNAN")

# Each criterion's share over a household's poverty level: electricity is rarely missing in Banten.
_BIAS = {"no_electricity": -0.75, "one_set_of_clothes_a_year": -0.15, "unprotected_water": -0.1,
         "head_primary_education_or_less": 0.15, "no_savings_over_500k": 0.2}
_CRITERIA = tuple(field for field in WELFARE_COLUMNS if field not in ("floor_area_per_person_m2", "installed_power_va"))
_BIASES = tuple(_BIAS.get(criterion, 0.0) for criterion in _CRITERIA)
_NO_ELECTRICITY = 1 + _CRITERIA.index("no_electricity")  # in the welfare cells, after the floor area
assert WELFARE_COLUMNS == ("floor_area_per_person_m2", *_CRITERIA, "installed_power_va"), "the cells' order"

_YOUNG = frozenset(("ANAK", "CUCU", "FAMILI LAIN"))  # more often a single name
_IMPOSSIBLE_DAYS = ("30/02", "31/02", "31/04", "31/06", "31/09", "31/11")
_BAD_KINDS = ("nik_lost_digit", "nik_scientific", "impossible_date", "unknown_village", "missing_head",
              "pregnant_man")


def _nik_as_number(cells: list[str], _: date) -> None:
    if cells[0]:
        cells[0] += ".0"  # saved as a number, all 16 digits kept


def _spaced(cells: list[str], _: date) -> None:
    cells[0], cells[2] = f" {cells[0]}" if cells[0] else "", f" {cells[2]} "


def _title_case(cells: list[str], _: date) -> None:
    cells[2], cells[5] = cells[2].title(), cells[5].title()


def _double_space(cells: list[str], _: date) -> None:
    cells[2], cells[5] = cells[2].replace(" ", "  ", 1), cells[5].replace(" ", "  ", 1)


def _sex_in_words(cells: list[str], _: date) -> None:
    cells[3] = "PEREMPUAN" if cells[3] == "P" else "LAKI-LAKI"


def _sex_lower(cells: list[str], _: date) -> None:
    cells[3] = cells[3].lower()


def _date_unpadded(cells: list[str], born: date) -> None:
    cells[4] = f"{born.day}/{born.month}/{born.year}"


def _date_dashed(cells: list[str], born: date) -> None:
    cells[4] = f"{born.day:02d}-{born.month:02d}-{born.year}"


def _date_iso(cells: list[str], born: date) -> None:
    cells[4] = born.isoformat()


# Dress a member's row may carry (cells: nik, status_nik, nama, jenis_kelamin, tanggal_lahir, hubungan, ...).
_DRESS = (_nik_as_number, _spaced, _title_case, _double_space, _sex_in_words, _sex_in_words, _sex_lower,
          _date_unpadded, _date_unpadded, _date_dashed, _date_iso)
_DRESSED = 1 / 6


#: A member as generated: sex, birth date (ordinal), and the row's cells from `nik` to `pekerjaan`.
_Person = tuple[str, int, list[str]]


class _Register:
    """The generator's state: the random stream, the serial counters, the recent heads for duplicates."""

    def __init__(self, seed: int, bad_rate: float, duplicate_rate: float) -> None:
        self.rng = Random(seed)
        self.random = self.rng.random
        self.bad_rate, self.duplicate_rate = bad_rate, duplicate_rate
        banten = sorted(code for code in VILLAGES if code.startswith("36"))
        self.regencies = sorted(_POPULATION)
        self.villages = {regency: [v for v in banten if v.startswith(regency)] for regency in self.regencies}
        self.cumulative = list(accumulate(_POPULATION[regency] for regency in self.regencies))
        self.kecamatan_villages: dict[str, list[str]] = {}
        for village in banten:
            self.kecamatan_villages.setdefault(village[:6], []).append(village)
        self.districts = sorted(self.kecamatan_villages)
        self.district_index = {district: i for i, district in enumerate(self.districts)}
        # Next serial of each (district, day): a NIK or No. KK is unique in the file, in fixed memory.
        self.nik_serials = array("H", bytes(2 * len(self.districts) * _BIRTH_SPAN))
        self.kk_serials = array("H", bytes(2 * len(self.districts) * _KK_SPAN))
        self.recent_heads: list[tuple[str, str, int, str]] = []  # name, sex, birth, village
        self.days: dict[int, tuple[str, str, str]] = {}

    # ---- identifiers --------------------------------------------------------------------------------

    def _serial(self, serials: array, district: str, offset: int, span: int) -> tuple[str, int]:
        """The next free serial of a district's day; when a day is full, the next district's."""
        index = self.district_index[district]
        while True:
            slot = index * span + offset
            if serials[slot] < 9999:
                serials[slot] += 1
                return self.districts[index], serials[slot]
            index = (index + 1) % len(self.districts)

    def day(self, ordinal: int) -> tuple[str, str, str]:
        """A day's NIK digits DDMMYY for a man and for a woman (day + 40), and DD/MM/YYYY; kept, as
        days repeat (a century of them at most) and formatting a date costs more than the rest of a row."""
        known = self.days.get(ordinal)
        if known is None:
            d = date.fromordinal(ordinal)
            tail = f"{d.month:02d}{d.year % 100:02d}"
            known = self.days[ordinal] = (f"{d.day:02d}{tail}", f"{d.day + 40:02d}{tail}",
                                          f"{d.day:02d}/{d.month:02d}/{d.year}")
        return known

    def nik(self, village: str, sex: str, born: int) -> str:
        """District (mostly the household's kecamatan), DDMMYY with day + 40 for women, a serial."""
        random = self.random
        district = village[:6] if random() < 0.85 else self.districts[int(random() * len(self.districts))]
        serials, slot = self.nik_serials, self.district_index[district] * _BIRTH_SPAN + _REF - born
        if serials[slot] < 9999:  # the way taken but for a crowd born on one day in one district
            serials[slot] += 1
            serial = serials[slot]
        else:
            district, serial = self._serial(serials, district, _REF - born, _BIRTH_SPAN)
        return f"{district}{(self.days.get(born) or self.day(born))[sex == 'F']}{serial:04d}"

    def kk(self, village: str) -> str:
        offset = 30 + int(self.random() * (_KK_SPAN - 30))
        district, serial = self._serial(self.kk_serials, village[:6], offset, _KK_SPAN)
        return f"{district}{self.day(_REF - offset)[0]}{serial:04d}"

    # ---- people -------------------------------------------------------------------------------------

    def variant(self, name: str) -> str:
        """The same person as another office typed the name: abbreviated, or with one typo."""
        random = self.random
        words = name.split(" ")
        if len(words) > 1 and random() < 0.4:
            return f"{words[0]}.{words[1][0]}"
        for _ in range(10):
            i = 1 + int(random() * (len(name) - 2))
            kind = random()
            if kind < 0.35:
                typed = name[:i] + name[i + 1:]
            elif kind < 0.7:
                typed = name[:i] + name[i + 1] + name[i] + name[i + 2:]
            else:
                typed = name[:i] + name[i] + name[i:]
            if typed != name and " " not in (typed[0], typed[-1]) and "  " not in typed:
                return typed
        return name + " " + _SECOND[int(random() * len(_SECOND))][0]

    def family(self, poor: bool, head: tuple[str, str, int] | None = None) -> list[_Person]:
        """A head (or `head`'s name, sex and birth), mostly a spouse, children 0-25, sometimes an elderly
        parent or another relative."""
        random, person = self.random, self.person
        if head is None:
            sex, age = "F" if random() < 0.15 else "M", 22 + random() * 50
            members = [person(sex, age, "KEPALA KELUARGA", poor)]
        else:
            sex, age = head[1], (_REF - head[2]) / _YEAR
            members = [person(sex, age, "KEPALA KELUARGA", poor, head[0], head[2])]
        mother_age = age if sex == "F" else age - 4
        if (sex == "M" and random() < 0.88) or (sex == "F" and random() < 0.05):
            if sex == "M":
                mother_age = max(18.0, age + 2 - 8 * random())
                members.append(person("F", mother_age, "ISTRI", poor))
            else:
                members.append(person("M", age + 6 * random(), "SUAMI", poor))
        children = (0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5)[int(random() * 11)] if mother_age >= 18 else 0
        oldest = min(25.0, mother_age - 17)
        for _ in range(children):
            members.append(person("F" if random() < 0.49 else "M", random() * oldest, "ANAK", poor))
        if random() < 0.12:
            members.append(person("F" if random() < 0.6 else "M", min(94.0, max(60.0, age + 18) + 8 * random()),
                                  "ORANG TUA" if random() < 0.6 else "MERTUA", poor))
        if random() < 0.06:
            sex = "F" if random() < 0.5 else "M"
            if age >= 45:
                members.append(person(sex, random() * 10, "CUCU", poor))
            else:
                members.append(person(sex, 10 + random() * 30, "FAMILI LAIN", poor))
        return members[:10]

    def person(self, sex: str, age: float, relation: str, poor: bool,
               name: str | None = None, born: int | None = None) -> _Person:
        """A member `age` years old at the reference date (born at least a day before it), named from the
        lists, with school, pregnancy, disability and work as likely as at that age."""
        random = self.random
        if name is None:
            first = _FEMALE if sex == "F" else _MALE
            name = first[int(random() * len(first))]
            if random() < (0.5 if relation in _YOUNG else 0.65):
                name += " " + _SECOND[int(random() * len(_SECOND))]
        if born is None:
            born = _REF - 1 - int(age * _YEAR)
        school = pregnant = disability = "N"
        if 7 <= age < 16:
            school = "Y" if random() < 0.93 else "N"
        elif 16 <= age < 19:
            school = "Y" if random() < 0.75 else "N"
        elif 19 <= age < 22 and relation == "ANAK":
            school = "Y" if random() < 0.15 else "N"
        if sex == "F" and 18 <= age <= 45 and random() < (0.06 if relation != "ANAK" else 0.02):
            pregnant = "Y"
        if random() < 0.03:
            disability = "Y"
        if relation == "KEPALA KELUARGA":
            jobs = _HEAD_WORK_POOR if poor else _HEAD_WORK
            work = jobs[int(random() * len(jobs))] if age < 70 else "BELUM/TIDAK BEKERJA"
        elif school == "Y":
            work = "PELAJAR/MAHASISWA"
        elif relation == "ISTRI":
            work = "MENGURUS RUMAH TANGGA"
        else:
            work = "BELUM/TIDAK BEKERJA"
        day = self.days.get(born) or self.day(born)
        return sex, born, ["", "", name, "P" if sex == "F" else "L", day[2], relation, school, pregnant, disability,
                           work]

    # ---- the household's columns ---------------------------------------------------------------------

    def welfare(self, poverty: float) -> list[str]:
        """The welfare columns for a poverty level 0-1: the poorer, the more criteria hold."""
        random = self.random
        floor = 3 + (1 - poverty) * 22 + 4 * random()
        # a decimal comma, as Indonesian spreadsheets write it, must be quoted in a CSV
        cells = [f'"{floor:.1f}"'.replace(".", ",") if random() < 0.05 else f"{floor:.1f}"]
        # per criterion one draw: 3 % not observed, else "Y" as likely as poverty + the criterion's bias
        cells += ["" if (draw := random()) < 0.03 else "Y" if draw < 0.03 + 0.97 * (poverty + bias) else "N"
                  for bias in _BIASES]
        no_electricity = cells[_NO_ELECTRICITY] == "Y"
        level = poverty + 0.3 * (random() - 0.5)
        power = "0" if no_electricity else "450" if level > 0.6 else "900" if level > 0.35 else \
            ("1.300" if random() < 0.1 else "1300") if level > 0.1 else "2200"
        cells.append(power)
        return cells

    def address(self, regency: str) -> str:
        random = self.random
        rt, rw = 1 + int(random() * 15), 1 + int(random() * 12)
        if regency >= "3671" and random() < 0.6:  # the cities: streets more often than kampung
            street = _STREET[int(random() * len(_STREET))]
            return f"JL. {street} NO. {1 + int(random() * 120)} RT {rt:03d}/RW {rw:03d}"
        kampung = _KAMPUNG[int(random() * len(_KAMPUNG))]
        return f"KP. {kampung} RT {rt:03d} RW {rw:03d}"

    def neighbour(self, village: str) -> str:
        """The village next to it in its kecamatan's list, or itself when the kecamatan has one."""
        villages = self.kecamatan_villages[village[:6]]
        return villages[(villages.index(village) + 1) % len(villages)]

    def unknown_village(self, village: str) -> str:
        """A code in the right kecamatan that no table holds: a typo or a village since renumbered."""
        while True:
            code = f"{village[:6]}9{int(self.random() * 1000):03d}"
            if code not in VILLAGES:
                return code

    # ---- a household ----------------------------------------------------------------------------------

    def household(self, number: int) -> list[str]:
        random = self.random
        regency = self.regencies[bisect(self.cumulative, random() * self.cumulative[-1])]
        villages = self.villages[regency]
        village = villages[int(random() * len(villages))]
        original = None
        if self.recent_heads and random() < self.duplicate_rate:
            original = self.recent_heads[int(random() * len(self.recent_heads))]
            village = original[3] if random() < 0.5 else self.neighbour(original[3])
            regency = village[:4]
        poverty = random()
        people = self.family(poverty > 0.4, original and (self.variant(original[0]), original[1], original[2]))
        if original is None:
            sex, born, cells = people[0]
            self.recent_heads.append((cells[2], sex, born, village))
            if len(self.recent_heads) > 200:
                del self.recent_heads[:100]
        nik = self.nik
        for sex, born, cells in people:
            if _REF - born < 366 and random() < 0.5:
                cells[1] = "pending"  # a newborn not yet on the civil register
            else:
                cells[0] = nik(village, sex, born)
            dress = random()
            if dress < _DRESSED:  # one row in six carries one piece of spreadsheet dress
                _DRESS[int(dress / _DRESSED * len(_DRESS))](cells, date.fromordinal(born))
        programme = ("jscm" if random() < 0.5 else "jamsosratu") if regency == "3672" else \
            ("" if random() < 0.1 else "jamsosratu")
        desil = "" if random() < 0.05 else str(min(10, max(1, 1 + int((1 - poverty) * 10 + 3 * (random() - 0.5)))))
        village_cell = village if random() < 0.9 else f"{village[:2]}.{village[2:4]}.{village[4:6]}.{village[6:]}"
        kk = self.kk(village)
        bad = _BAD_KINDS[int(random() * len(_BAD_KINDS))] if random() < self.bad_rate else None
        if bad == "unknown_village":
            village_cell = self.unknown_village(village)
        prefix = ",".join((f"{number:010d}", kk, village_cell, self.address(regency), programme, desil,
                           *self.welfare(poverty)))
        if bad is not None:
            people = self.break_one(bad, people)
        return [f"{prefix},{','.join(cells)}\n" for _, _, cells in people]

    def break_one(self, kind: str, people: list[_Person]) -> list[_Person]:
        """One realistic error in the household's rows (the village is broken in `household`)."""
        random = self.random
        with_nik = [cells for _, _, cells in people if cells[0]]
        if kind in ("nik_lost_digit", "nik_scientific") and with_nik:
            cells = with_nik[int(random() * len(with_nik))]
            nik = cells[0].strip().removesuffix(".0")
            at = int(random() * 16)
            cells[0] = nik[:at] + nik[at + 1:] if kind == "nik_lost_digit" else f"{int(nik):.5E}"
        elif kind == "missing_head":
            if len(people) > 1:
                del people[0]
            else:
                people[0][2][5] = "LAINNYA"
        elif kind == "pregnant_man" and any(sex == "M" for sex, _, _ in people):
            next(cells for sex, _, cells in people if sex == "M")[7] = "Y"
        elif kind != "unknown_village":  # an impossible date, also when the kind above had nobody to break
            _, born, cells = people[int(random() * len(people))]
            cells[4] = f"{_IMPOSSIBLE_DAYS[int(random() * len(_IMPOSSIBLE_DAYS))]}/{date.fromordinal(born).year}"
        return people


def generate(households: int, seed: int = 0, bad_rate: float = 0.02,
             duplicate_rate: float = 0.01) -> Iterator[str]:
    """The register's CSV lines, header first, one household at a time; same arguments, same bytes."""
    yield ",".join(HEADER) + "\n"
    register = _Register(seed, bad_rate, duplicate_rate)
    for number in range(1, households + 1):
        yield from register.household(number)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ejsika_registry.synthetic",
                                     description="Write a synthetic Banten register (DTKS-style BNBA CSV).")
    parser.add_argument("--households", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bad-rate", type=float, default=0.02, help="share of households with a broken row")
    parser.add_argument("--duplicate-rate", type=float, default=0.01, help="share of likely duplicate heads")
    parser.add_argument("-o", "--output", help="file to write; standard output by default")
    args = parser.parse_args(argv)
    lines = generate(args.households, args.seed, args.bad_rate, args.duplicate_rate)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as file:
            file.writelines(lines)
    else:
        try:
            sys.stdout.writelines(lines)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
