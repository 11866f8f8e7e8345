"""Figures for the province (the seed's "monitor which families become prosperous"): per programme,
kabupaten/kota and period, how many families entered, graduated (mandiri, alamiah) or left otherwise, and the
average time from entry to graduation. Aggregates only, from the enrolment steps the registry announced
(`enrolment_steps`, kept by the household consumer).

Counted by the step's effective day (Asia/Jakarta) inside [from, to]:
- entered: a candidate became active (admitted);
- graduated: an active or suspended family exited mandiri or alamiah;
- exited: an active or suspended family exited paksa; `not_admitted`: a candidate exited before admission;
- average days to graduation: for each graduation of the period, the days since that family's last entry
  before it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

_FIGURES = """
SELECT g.programme, left(g.region_code, 4) AS region,
  count(*) FILTER (WHERE g.status = 'active' AND g.previous_status = 'candidate') AS entered,
  count(*) FILTER (WHERE g.status = 'exited' AND g.previous_status IN ('active', 'suspended')
                   AND g.exit_kind = 'mandiri') AS graduated_mandiri,
  count(*) FILTER (WHERE g.status = 'exited' AND g.previous_status IN ('active', 'suspended')
                   AND g.exit_kind = 'alamiah') AS graduated_alamiah,
  count(*) FILTER (WHERE g.status = 'exited' AND g.previous_status IN ('active', 'suspended')
                   AND g.exit_kind = 'paksa') AS exited_paksa,
  count(*) FILTER (WHERE g.status = 'exited' AND g.previous_status = 'candidate') AS not_admitted,
  avg(g.effective_date - e.entered_on) FILTER (WHERE g.status = 'exited' AND g.exit_kind IN ('mandiri', 'alamiah')
      AND g.previous_status IN ('active', 'suspended')) AS days_to_graduation
FROM enrolment_steps g
LEFT JOIN LATERAL (
  SELECT max(s.effective_date) AS entered_on FROM enrolment_steps s
  WHERE s.household_id = g.household_id AND s.programme = g.programme AND s.version < g.version
    AND s.status = 'active' AND s.previous_status = 'candidate'
) e ON g.status = 'exited'
WHERE g.effective_date BETWEEN $1 AND $2
  AND ($3::text IS NULL OR g.programme = $3) AND ($4::text IS NULL OR starts_with(g.region_code, $4))
GROUP BY 1, 2 ORDER BY 1, 2
"""


async def figures(conn: asyncpg.Connection | asyncpg.Pool, start: date, end: date, programme: str | None,
                  region_prefix: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(_FIGURES, start, end, programme, region_prefix)
    return [{"programme": r["programme"], "region": r["region"], "entered": r["entered"],
             "graduated": {"mandiri": r["graduated_mandiri"], "alamiah": r["graduated_alamiah"]},
             "exited": {"paksa": r["exited_paksa"], "not_admitted": r["not_admitted"]},
             "average_days_to_graduation": round(float(r["days_to_graduation"]), 1)
             if r["days_to_graduation"] is not None else None} for r in rows]
