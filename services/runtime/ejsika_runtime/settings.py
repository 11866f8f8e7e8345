"""Settings from `EJSIKA_*` environment variables, with defaults that work on a laptop."""

from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:55432/ejsika"
LOCAL_KAFKA_BOOTSTRAP = "127.0.0.1:9092"


class Settings(BaseSettings):
    """What every service reads. A service subclasses it to add its own fields."""

    model_config = SettingsConfigDict(env_prefix="EJSIKA_", extra="ignore")

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
