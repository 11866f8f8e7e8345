"""A data-subject request across the platform: everything held on one person, and who processed it.

The registry finds the person's households by the NIK's keyed hash; each service then answers
for those households with what it holds and its own record of processing. The caller's token
(an operator's or an auditor's) is checked by every service, as for any other read, and each read
is itself recorded.
"""

from __future__ import annotations

from typing import Any

import httpx

# What each service holds on a household, besides its record of processing: the reads that show it,
# named by what they hold.
HOLDINGS = {
    "monitoring": {"visits": "/households/{household_id}/visits",
                   "visit_records": "/households/{household_id}/visit-records"},
    "eligibility": {"assessments": "/households/{household_id}/assessments",
                    "decisions": "/households/{household_id}/decisions"},
}


async def _all(client: httpx.AsyncClient, url: str, params: dict[str, Any] | None = None) -> list[Any] | None:
    """Every item a read answers, following its pages to the end; None when it knows no such household."""
    items, cursor = [], None
    while True:
        answer = await client.get(url, params={**(params or {}), **({"cursor": cursor} if cursor else {})})
        if answer.status_code == 404:
            return None if cursor is None and not items else items
        answer.raise_for_status()
        page = answer.json()
        if isinstance(page, list):  # a read that is not paged answers everything at once
            return page
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


async def _trail(client: httpx.AsyncClient, base: str, household_id: str) -> list[dict[str, Any]]:
    return await _all(client, f"{base}/processing-records", {"household_id": household_id, "limit": 1000}) or []


async def subject_access(nik: str, token: str, urls: dict[str, str]) -> dict[str, Any]:
    """`urls` maps each service name to its base URL."""
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        answer = await client.post(f"{urls['registry']}/data-subject-requests", json={"nik": nik})
        answer.raise_for_status()
        registry = answer.json()
        report: dict[str, Any] = {"registry": registry, "services": {}}
        for household in registry["households"]:
            household_id = str(household["id"])
            for service, base in urls.items():
                if service == "registry":
                    continue
                held: dict[str, Any] = {"processing_records": await _trail(client, base, household_id)}
                if service in HOLDINGS:
                    held["holds"] = {what: await _all(client, base + path.format(household_id=household_id))
                                     for what, path in HOLDINGS[service].items()}
                report["services"].setdefault(service, {})[household_id] = held
        return report
