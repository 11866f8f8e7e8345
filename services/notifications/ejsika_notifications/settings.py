"""Notifications settings (`EJSIKA_*` environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ejsika_runtime.settings import Settings

from .crypto import KEYS_SETTING, SecretCipher, SecretsKeysError
from .pseudonyms import PseudonymKeyError, Pseudonyms
from .worker import DeliveryPolicy


class NotificationsSettings(Settings):
    http_port: int = 8004
    # Two consumers per topic, each reading half its partitions (the runtime's default is one per
    # partition: 24 here, for four topics). A consumer's batch costs the same few round trips however
    # small, and at a few hundred events a second split six ways they held one or two events each;
    # its fetches, heartbeats and offset commits go on whether or not events come. Two still overlap
    # one batch's commit with the next one's work.
    consumer_concurrency: int | None = Field(default=2, ge=1)

    delivery_batch_size: int = Field(100, ge=1, le=1000, description="Notifications of one subscription per webhook message.")
    delivery_concurrency: int = Field(64, ge=1, description="Webhook POSTs in flight at once, per replica.")
    delivery_agency_concurrency: int = Field(4, ge=1, description="… of which one agency may hold at most this many.")
    delivery_timeout_s: float = Field(10.0, gt=0, description="Whole-request deadline of one POST.")
    delivery_max_attempts: int = Field(12, ge=1, description="Tries of a webhook message before it fails.")
    delivery_backoff_base_s: float = Field(5.0, gt=0, description="The longest wait after the first failed try.")
    delivery_backoff_factor: float = Field(3.0, ge=1, description="… multiplied by this after each further one.")
    delivery_backoff_cap_s: float = Field(36_000.0, gt=0, description="… up to this (each wait is drawn in [0, step)).")
    delivery_retry_after_cap_s: float = Field(36_000.0, ge=0, description="The longest Retry-After honoured.")
    delivery_lease_s: float = Field(60.0, gt=0, description="How long a claimed batch stays with its worker.")
    delivery_poll_interval_s: float = Field(1.0, gt=0, description="Safety poll besides LISTEN/NOTIFY.")
    delivery_retention_s: float = Field(30 * 86400.0, gt=0, description="Delivered rows are deleted after this.")

    secrets_keys: SecretStr | None = Field(
        None,
        description="Comma-separated Fernet keys encrypting webhook secrets at rest: the first encrypts,"
        " all decrypt. Required: the service does not start without it (see crypto.py for rotation).",
    )
    webhooks_allow_private: bool = Field(
        False,
        description="Let webhooks go to loopback and private addresses (local receivers: demo, tests)."
        " Link-local, CGNAT, multicast and other non-public addresses stay refused.",
    )

    pseudonym_key: SecretStr | None = Field(
        None,
        description="Key of the per-agency pseudonyms (references) of families and members: at least 32"
        " characters. Required: the service does not start without it. Changing it changes every"
        " reference the agencies hold (see pseudonyms.py).",
    )
    digest_interval_s: float = Field(300.0, gt=0, description="How often the daily digests and derived facts are checked.")

    demo_webhook_url: str | None = None
    demo_webhook_secret: str | None = None

    def secrets_cipher(self) -> SecretCipher:
        """The cipher of the webhook secrets; SecretsKeysError (never showing a key) if unusable."""
        if self.secrets_keys is None or not self.secrets_keys.get_secret_value().strip():
            raise SecretsKeysError(
                f"{KEYS_SETTING} is not set: give it a comma-separated list of Fernet keys (the first"
                " encrypts webhook secrets, all decrypt). Make one with: python -c \"from"
                " cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\""
            )
        return SecretCipher.from_setting(self.secrets_keys.get_secret_value())

    def pseudonyms(self) -> Pseudonyms:
        """The per-agency pseudonyms; PseudonymKeyError (never showing the key) if the key is unusable."""
        if self.pseudonym_key is None or not self.pseudonym_key.get_secret_value().strip():
            raise PseudonymKeyError(
                "EJSIKA_PSEUDONYM_KEY is not set: give it 32 or more random characters, e.g. from"
                " python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
        return Pseudonyms(self.pseudonym_key.get_secret_value().strip().encode())

    def delivery_policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            batch_size=self.delivery_batch_size,
            concurrency=self.delivery_concurrency,
            agency_concurrency=self.delivery_agency_concurrency,
            timeout_s=self.delivery_timeout_s,
            max_attempts=self.delivery_max_attempts,
            backoff_base_s=self.delivery_backoff_base_s,
            backoff_factor=self.delivery_backoff_factor,
            backoff_cap_s=self.delivery_backoff_cap_s,
            retry_after_cap_s=self.delivery_retry_after_cap_s,
            lease_s=max(self.delivery_lease_s, 2 * self.delivery_timeout_s),
            poll_interval_s=self.delivery_poll_interval_s,
            retention_s=self.delivery_retention_s,
        )
