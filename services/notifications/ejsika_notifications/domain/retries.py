"""When to try a failed webhook delivery again, and when to give up."""

from __future__ import annotations

# Past this exponent the cap always wins; it also keeps 2**n from overflowing a float.
_MAX_EXPONENT = 62


def retry_delay(attempt: int, *, base_s: float, cap_s: float, jitter: float) -> float:
    """Seconds to wait after the `attempt`-th failed try (1-based): exponential, capped.

    Half the wait is fixed and half random (`jitter` in [0, 1)), so the deliveries queued while an
    agency was down do not all come back at the same instant when it recovers.
    """
    ceiling = min(cap_s, base_s * 2 ** min(max(attempt - 1, 0), _MAX_EXPONENT))
    return ceiling / 2 + jitter * ceiling / 2


def gives_up(attempts: int, max_attempts: int) -> bool:
    """True when `attempts` tries have failed and no other may be made."""
    return attempts >= max_attempts
