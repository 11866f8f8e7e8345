"""A data-subject request across the platform: everything held on one person, and who processed it.

The registry finds the person's households by the NIK's keyed hash; each service then answers
for those households with what it holds and its own record of processing. The caller's token
(an operator's or an auditor's) is checked by every service, as for any other read, and each read
is itself recorded.
"""

from __future__ import annotations

from typing import Any

import httpx

# What each service holds on a household, besides its record of processing.
HOLDINGS = {
    "monitoring": "/households/{household_id}/visits",
    "eligibility": "/households/{household_id}/assessments",
}


async def _trail(client: httpx.AsyncClient, base: str, household_id: str) -> list[dict[str, Any]]:
    records, cursor = [], None
    while True:
        params = {"household_id": household_id, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        answer = await client.get(f"{base}/processing-records", params=params)
        if answer.status_code == 404:
            return records
        answer.raise_for_status()
        page = answer.json()
        records += page["items"]
        if not (cursor := page["next_cursor"]):
            return records


async def _holding(client: httpx.AsyncClient, base: str, path: str, household_id: str) -> Any:
    answer = await client.get(base + path.format(household_id=household_id))
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return answer.json()


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
                    held["holds"] = await _holding(client, base, HOLDINGS[service], household_id)
                report["services"].setdefault(service, {})[household_id] = held
        return report
