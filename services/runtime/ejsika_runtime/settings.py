"""Settings from `EJSIKA_*` environment variables, with defaults that work on a laptop."""

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:55432/ejsika"
LOCAL_KAFKA_BOOTSTRAP = "127.0.0.1:9092"


class Settings(BaseSettings):
    """What every service reads. A service subclasses it to add its own fields."""

    # Errors name the setting, never its value: a rejected combination would otherwise echo every
    # setting given, passwords among them.
    model_config = SettingsConfigDict(env_prefix="EJSIKA_", extra="ignore", hide_input_in_errors=True)

    database_url: str = LOCAL_DATABASE_URL
    kafka_bootstrap: str = LOCAL_KAFKA_BOOTSTRAP
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    # Consumers, the relay's reports, the API and background loops share the pool.
    db_pool_size: int = Field(default=10, ge=2)
    # Every connection (pool, relay leader, listeners; ejsika_runtime.db.ConnectionPolicy): a statement
    # unanswered this long is cancelled, so a half-open connection cannot hang a batch or the relay.
    db_command_timeout_s: float = Field(default=60.0, ge=1)
    # TCP keepalives on both ends (the client's socket, and PostgreSQL's tcp_keepalives_* for the session):
    # a peer gone without a word is noticed after idle + interval x count seconds, and its locks released.
    db_keepalives_idle_s: int = Field(default=30, ge=1, le=7200)
    db_keepalives_interval_s: int = Field(default=10, ge=1, le=600)
    db_keepalives_count: int = Field(default=3, ge=1, le=30)
    # PostgreSQL ends a session idle inside a transaction this long (its locks go with it); 0: the server's own.
    db_idle_in_transaction_timeout_s: float = Field(default=60.0, ge=0)

    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    # consumers per topic in a process; None: one per partition
    consumer_concurrency: int | None = Field(default=None, ge=1)
    consumer_batch_timeout_ms: int = Field(default=100, ge=1, le=60_000)  # 0 would poll in a busy loop
    # 0 would apply a failing event never and dead-letter it never, then commit its offset: lost.
    consumer_max_attempts: int = Field(default=3, ge=1, le=100)
    # The first pause after a batch is rewound (database away, systemic failure), doubled per rewind in a row
    # up to consumer_pause_max_s. The pause is taken inside the poll, so it stays under max.poll.interval.ms (300 s).
    consumer_retry_backoff_s: float = Field(default=0.5, ge=0, le=60)
    consumer_pause_max_s: float = Field(default=30.0, ge=0, le=240)
    # More than this share of a batch's events failing alone is systemic (rewind and pause), not poison.
    consumer_systemic_ratio: float = Field(default=0.5, gt=0, lt=1)
    # The one-by-one pass that isolates poison events stops after this long (and commits what it decided).
    consumer_isolation_budget_s: float = Field(default=60.0, ge=1, le=240)
    # How long the inbox remembers an applied event id: longer than the topics' retention (7 days),
    # the time within which the same event can be delivered again (inbox.prune).
    inbox_keep_days: int = Field(default=14, ge=8, le=3650)

    relay_batch_size: int = Field(default=2000, ge=1, le=100_000)
    relay_poll_interval_s: float = Field(default=1.0, ge=0.05, le=60)

    # Who may call: tokens of an OpenID Connect provider (the embedded Keycloak's realm by default).
    auth_issuer: str = "http://127.0.0.1:8080/realms/ejsika"
    auth_audience: str = "ejsika"
    auth_jwks_url: str | None = None  # None: the issuer's Keycloak path, <issuer>/protocol/openid-connect/certs
    auth_algorithms: list[str] = Field(default=["RS256"], min_length=1)
    auth_leeway_s: float = Field(default=30.0, ge=0, le=300)
    # A rotated signing key is fetched at most this long after a token first names it.
    auth_keys_refresh_cooldown_s: float = Field(default=10.0, ge=0, le=300)
    # Limits of every HTTP API.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    write_rate_per_s: float = Field(default=10.0, gt=0)
    write_burst: int = Field(default=20, ge=1)

    @field_validator("auth_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: list[str]) -> list[str]:
        # A shared-secret algorithm would let anyone holding the public key forge tokens.
        weak = [a for a in algorithms if not a.startswith(("RS", "PS", "ES", "EdDSA"))]
        if weak:
            raise ValueError(f"only asymmetric signature algorithms are accepted, not {weak}")
        return algorithms

    # How every Kafka client connects (ejsika_runtime.kafka.security_options); PLAINTEXT: as on a laptop.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None  # None: the system's CAs verify the broker
    kafka_ssl_certfile: str | None = None  # a client certificate (mutual TLS), PEM
    kafka_ssl_keyfile: str | None = None  # its key, PEM (or inside the certificate file)

    @model_validator(mode="after")
    def _kafka_security_complete(self):
        protocol = self.kafka_security_protocol
        sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        if sasl and not (self.kafka_sasl_username and password):
            raise ValueError(f"EJSIKA_KAFKA_SECURITY_PROTOCOL={protocol} needs EJSIKA_KAFKA_SASL_USERNAME"
                             " and EJSIKA_KAFKA_SASL_PASSWORD")
        if not sasl and (self.kafka_sasl_username or self.kafka_sasl_password):
            raise ValueError(f"EJSIKA_KAFKA_SASL_USERNAME/PASSWORD are set but EJSIKA_KAFKA_SECURITY_PROTOCOL"
                             f"={protocol} does not authenticate with SASL; use SASL_SSL")
        files = [name for name in ("cafile", "certfile", "keyfile") if getattr(self, f"kafka_ssl_{name}")]
        if files and not tls:
            raise ValueError(f"EJSIKA_KAFKA_SSL_{files[0].upper()} is set but EJSIKA_KAFKA_SECURITY_PROTOCOL"
                             f"={protocol} does not use TLS; use SSL or SASL_SSL")
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("EJSIKA_KAFKA_SSL_KEYFILE needs EJSIKA_KAFKA_SSL_CERTFILE, the certificate of that key")
        return self
