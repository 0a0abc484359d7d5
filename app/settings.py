"""Service settings: one `Settings`, read from `SEQCAST_*` environment variables.

Development is open by default (no API keys, embedded Redis); production refuses to start
without API keys or with the default admin key.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)

DEFAULT_ADMIN_KEY = "dev-admin-key"
API_KEY_HEADER = "X-API-Key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEQCAST_", extra="ignore", frozen=True)

    artifact_dir: Path = Path("artifacts/demo")
    redis_url: SecretStr | None = Field(
        default=None, description="redis:// or rediss:// URL (password allowed); None = embedded"
    )
    data_dir: Path = Field(
        default=Path("var"), description="persistence of the embedded redis-server"
    )
    env: Literal["development", "production"] = "development"
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), description="comma-separated X-API-Key values; empty = open (development)"
    )
    admin_key: SecretStr = SecretStr(DEFAULT_ADMIN_KEY)
    window_ttl_seconds: int = Field(default=30 * 86400, gt=0)
    max_batch_events: int = Field(default=1000, gt=0, le=100_000)
    max_body_bytes: int = Field(default=1 << 20, gt=0)
    max_id_length: int = Field(default=128, gt=0, le=1024)
    # 0: a batch is whatever queued while the previous model call ran. A wait for more
    # only added latency for closed-loop clients (docs/benchmarks-service.md).
    batch_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    max_model_batch: int = Field(default=64, gt=0)
    inline_rows: int = Field(
        default=4, ge=0,
        description="a lone request of up to this many model rows is scored on the event "
        "loop's thread, without the hop to the model thread (CPU provider only); 0 = never",
    )
    model_threads: int = Field(
        default=1, ge=0,
        description="ONNX Runtime intra-op threads per process; 0 = all cores (spinning "
        "pool threads cost more CPU than they save on micro-batches of small windows)",
    )
    reload_poll_seconds: float = Field(default=5.0, ge=0)
    log_level: str = "INFO"
    redis_key_prefix: str = Field(default="seqcast", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    seen_ids_per_user: int = Field(
        default=1000, gt=0, description="event ids remembered per user for de-duplication"
    )
    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    erasure_rewrite_seconds: float = Field(
        default=60.0, ge=0,
        description="longest wait from an erasure to the rewrite of the Redis append-only "
        "file that drops the user's events (at most one rewrite per node this often); "
        "0 = never (the operator rewrites)",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("log level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @model_validator(mode="after")
    def _safe_in_production(self) -> Settings:
        if self.env != "production":
            return self
        if not self.api_keys:
            raise ValueError("SEQCAST_API_KEYS must be set in production")
        if self.admin_key.get_secret_value() == DEFAULT_ADMIN_KEY:
            raise ValueError("SEQCAST_ADMIN_KEY must be changed from its default in production")
        if self.redis_url is None:
            log.warning("production with the embedded redis-server: point SEQCAST_REDIS_URL "
                        "at a managed Redis for durability and several replicas")
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys) or self.env == "production"
