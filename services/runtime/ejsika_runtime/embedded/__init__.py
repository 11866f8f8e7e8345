"""Embedded infrastructure for local runs and tests: PostgreSQL, single-node Kafka and Keycloak."""

from ._util import EmbeddedError, free_port
from .kafka import KAFKA_VERSION, EmbeddedKafka, ensure_jars
from .keycloak import KEYCLOAK_VERSION, EmbeddedKeycloak, ensure_keycloak
from .postgres import EmbeddedPostgres
from .stack import EmbeddedStack

__all__ = [
    "KAFKA_VERSION",
    "KEYCLOAK_VERSION",
    "EmbeddedError",
    "EmbeddedKafka",
    "EmbeddedKeycloak",
    "EmbeddedPostgres",
    "EmbeddedStack",
    "ensure_jars",
    "ensure_keycloak",
    "free_port",
]
