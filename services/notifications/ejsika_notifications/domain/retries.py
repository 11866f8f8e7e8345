"""What an agency's answer to a webhook means, when to try again, and when to give up.

The schedule is exponential (`base_s`, times `factor` after each failure, capped) with full
jitter: each wait is drawn uniformly between 0 and the schedule's step, so that the messages queued
while an agency was down do not all come back at the same instant when it recovers. With the
defaults (5 s, ×3, capped at 10 h, 12 attempts) the last try is made a day or so after the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import StrEnum

# Past this exponent the cap always wins; it also keeps factor**n from overflowing a float.
_MAX_EXPONENT = 62


class Verdict(StrEnum):
    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # 408, 429, 5xx, 3xx (never followed), network errors and timeouts
    REJECTED = "rejected"  # any other 4xx: the same message would be refused again
    GONE = "gone"  # 410: the endpoint is no more; the subscription is disabled


def verdict(status: int | None) -> Verdict:
    """What an HTTP status (None: no answer at all) means for the message."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    if 400 <= status < 500 and status not in (408, 429):
        return Verdict.REJECTED
    return Verdict.RETRY


@dataclass(frozen=True)
class RetrySchedule:
    base_s: float = 5.0
    factor: float = 3.0
    cap_s: float = 36_000.0
    max_attempts: int = 12
    retry_after_cap_s: float = 36_000.0  # an agency cannot push its retries further than this

    def step(self, attempt: int) -> float:
        """The longest wait after the `attempt`-th failed try (1-based)."""
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        return min(self.cap_s, self.base_s * self.factor ** exponent)

    def delay(self, attempt: int, jitter: float, retry_after_s: float | None = None) -> float:
        """Seconds to wait after the `attempt`-th failed try; `jitter` in [0, 1).

        A `Retry-After` the agency sent is honoured (never retried sooner), up to the cap.
        """
        wait = jitter * self.step(attempt)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.retry_after_cap_s))
        return wait

    def gives_up(self, attempts: int) -> bool:
        """True when `attempts` tries have failed and no other may be made."""
        return attempts >= self.max_attempts


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    """The wait a `Retry-After` header asks for (delay-seconds or an HTTP date), None if absent or
    unreadable (a malformed header is ignored, not obeyed)."""
    if header is None or not (header := header.strip()):
        return None
    if header.isdigit():
        return float(header)
    try:
        at = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:  # HTTP dates are GMT
        at = at.replace(tzinfo=timezone.utc)
    return max(0.0, (at - (now or datetime.now(timezone.utc))).total_seconds())
