"""DCI-style subscriptions: an agency asks for one event type, filtered, at a webhook URL."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel

from ejsika_contracts import EligibilityAssessed, EligibilityAssessedData

from .agencies import Profile, field_paths

# The event types an agency may subscribe to, with the model of their data (what a profile names).
EVENT_TYPES: dict[str, type[BaseModel]] = {EligibilityAssessed.event_type: EligibilityAssessedData}
KNOWN_FIELDS: frozenset[str] = frozenset().union(*(field_paths(m) for m in EVENT_TYPES.values()))

# Kemendagri levels: province (36), regency/city (3672), district (367201), village (3672011001).
REGION_PREFIX_LENGTHS = (0, 2, 4, 6, 10)

SECRET_PREFIX = "whsec_"
# The Standard Webhooks recommendation for HMAC-SHA256 keys.
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64


@dataclass(frozen=True)
class Filter:
    region_prefix: str = ""
    eligible_only: bool = False

    def admits(self, data: Mapping[str, Any]) -> bool:
        if not str(data.get("region_code", "")).startswith(self.region_prefix):
            return False
        return not self.eligible_only or data.get("eligible") is True


@dataclass(frozen=True)
class Subscription:
    id: UUID
    agency: str
    event_type: str
    filter: Filter
    profile: Profile  # the agency's, at the time the subscriptions were loaded
    active: bool = True


def matches(subscription: Subscription, event_type: str, data: Mapping[str, Any]) -> bool:
    return subscription.active and subscription.event_type == event_type and subscription.filter.admits(data)


def region_prefix_problem(prefix: str) -> str | None:
    if not prefix.isdigit() and prefix != "":
        return "region prefix must be digits of a Kemendagri code, without dots"
    if len(prefix) not in REGION_PREFIX_LENGTHS:
        return "region prefix must be a province (2 digits), regency/city (4), district (6) or village (10) code"
    return None


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_problem(secret: str) -> str | None:
    """Why `secret` is not a usable Standard Webhooks signing secret, or None. Never echoes it."""
    if not secret.startswith(SECRET_PREFIX):
        return f"secret must start with {SECRET_PREFIX}"
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return "secret must be whsec_ followed by base64"
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        return f"secret must hold {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} random bytes"
    return None


def _usable_secret(secret: str) -> str:
    if problem := secret_problem(secret):
        raise ValueError(problem)
    return secret


WebhookSecret = Annotated[str, AfterValidator(_usable_secret)]
