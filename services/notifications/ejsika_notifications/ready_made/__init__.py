"""Ready-made subscriptions: what an agency should hear of, as configuration an admin loads.

Each file names an agency, its data profile and the subscriptions that serve one of its
programmes (the education office's SMA/SMK placement and dropout risk, the health office's
antenatal care and toddler growth). They are checked when read, by the same rules as the API's,
so a broken file fails at start and in the tests, not when an admin loads it. A subscription the
data cannot serve yet says why in `unavailable` and is never created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..domain.agencies import Agency
from ..domain.subscriptions import EVENT_TYPES, FREQUENCIES, KNOWN_FIELDS, Filter, filter_problems

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class ReadyMade:
    name: str
    description: str
    event_type: str | None
    filter: Filter
    frequency: str
    unavailable: str | None = None  # why it cannot be made yet


@dataclass(frozen=True)
class Configuration:
    agency: Agency
    subscriptions: tuple[ReadyMade, ...]

    def named(self, names: list[str] | None) -> list[ReadyMade]:
        """The available ones among `names` (all of them when None)."""
        return [r for r in self.subscriptions if r.unavailable is None and (names is None or r.name in names)]


class ReadyMadeError(ValueError):
    pass


def _read(path: Path) -> Configuration:
    raw = json.loads(path.read_text())
    agency = Agency(raw["agency"]["code"], raw["agency"]["name"], frozenset(raw["agency"]["profile"]))
    if unknown := sorted(agency.profile - KNOWN_FIELDS):
        raise ReadyMadeError(f"{path.name}: unknown profile fields {unknown}")
    found = []
    for item in raw["subscriptions"]:
        if "unavailable" in item:
            found.append(ReadyMade(item["name"], item["description"], None, Filter(), "immediate", item["unavailable"]))
            continue
        filter_json = dict(item.get("filter", {}))
        age = filter_json.pop("member_age", None) or {}
        filter = Filter.from_json({**filter_json, "member_age_min": age.get("min"), "member_age_max": age.get("max")})
        if item["event_type"] not in EVENT_TYPES or item["frequency"] not in FREQUENCIES:
            raise ReadyMadeError(f"{path.name}: {item['name']} has an unknown event type or frequency")
        if problems := filter_problems(item["event_type"], filter):
            raise ReadyMadeError(f"{path.name}: {item['name']}: {problems}")
        found.append(ReadyMade(item["name"], item["description"], item["event_type"], filter, item["frequency"]))
    return Configuration(agency, tuple(found))


@cache
def configurations() -> dict[str, Configuration]:
    """Every ready-made configuration, by agency code."""
    read = [_read(path) for path in sorted(FOLDER.glob("*.json"))]
    return {c.agency.code: c for c in read}
