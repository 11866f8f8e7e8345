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
    http_port: int = 8000
    log_level: str = "INFO"
    db_pool_size: int = 10

    consumer_batch_size: int = 500
    consumer_concurrency: int | None = None  # consumers per topic in a process; None: one per partition
    consumer_batch_timeout_ms: int = 100
    consumer_max_attempts: int = 3
    consumer_retry_backoff_s: float = 0.5

    relay_batch_size: int = 2000
    relay_poll_interval_s: float = 1.0

    # Who may call: tokens of an OpenID Connect provider (the embedded Keycloak's realm by default).
    auth_issuer: str = "http://127.0.0.1:8080/realms/ejsika"
    auth_audience: str = "ejsika"
    auth_jwks_url: str | None = None  # None: the issuer's Keycloak path, <issuer>/protocol/openid-connect/certs
    auth_algorithms: list[str] = Field(default=["RS256"], min_length=1)
    auth_leeway_s: float = Field(default=30.0, ge=0, le=300)
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
