"""Embedded infrastructure for local runs and tests: PostgreSQL and single-node Kafka."""

from ._util import EmbeddedError, free_port
from .kafka import KAFKA_VERSION, EmbeddedKafka, ensure_jars
from .postgres import EmbeddedPostgres
from .stack import EmbeddedStack

__all__ = [
    "KAFKA_VERSION",
    "EmbeddedError",
    "EmbeddedKafka",
    "EmbeddedPostgres",
    "EmbeddedStack",
    "ensure_jars",
    "free_port",
]
