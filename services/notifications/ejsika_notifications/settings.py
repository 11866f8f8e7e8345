"""Notifications settings (`EJSIKA_*` environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ejsika_runtime.settings import Settings

from .crypto import KEYS_SETTING, SecretCipher, SecretsKeysError
from .worker import DeliveryPolicy


class NotificationsSettings(Settings):
    http_port: int = 8004

    delivery_batch_size: int = Field(100, ge=1, le=1000, description="Deliveries of one subscription per POST.")
    delivery_concurrency: int = Field(16, ge=1, description="Webhook POSTs in flight at once, per replica.")
    delivery_timeout_s: float = Field(10.0, gt=0, description="Whole-request deadline of one POST.")
    delivery_max_attempts: int = Field(15, ge=1)
    delivery_backoff_base_s: float = Field(2.0, gt=0)
    delivery_backoff_cap_s: float = Field(3600.0, gt=0)
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

    def delivery_policy(self) -> DeliveryPolicy:
        return DeliveryPolicy(
            batch_size=self.delivery_batch_size,
            concurrency=self.delivery_concurrency,
            timeout_s=self.delivery_timeout_s,
            max_attempts=self.delivery_max_attempts,
            backoff_base_s=self.delivery_backoff_base_s,
            backoff_cap_s=self.delivery_backoff_cap_s,
            lease_s=max(self.delivery_lease_s, 2 * self.delivery_timeout_s),
            poll_interval_s=self.delivery_poll_interval_s,
            retention_s=self.delivery_retention_s,
        )
