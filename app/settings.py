"""Service settings: one `Settings`, read from `SEQCAST_*` environment variables.

Development is open by default (no API keys, embedded Redis); production refuses to start
without API keys or with the default admin key. A refused configuration is reported by
`load_settings` in one line that names the variable of each broken rule, never its value:
pydantic's own message would echo every input, API keys included.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from model.errors import SeqcastError
from model.features import FeatureSpec

log = logging.getLogger(__name__)

ENV_PREFIX = "SEQCAST_"
DEFAULT_ADMIN_KEY = "dev-admin-key"
API_KEY_HEADER = "X-API-Key"
DEMO_ARTIFACT = Path("artifacts/demo")

DocsAccess = Literal["open", "key", "off"]
CandidateMode = Literal["shadow", "ab"]


class InvalidSettings(SeqcastError):
    """The SEQCAST_* environment breaks a rule; the message names each variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    artifact_dir: Path = DEMO_ARTIFACT
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
    max_clock_skew_seconds: float = Field(
        default=300.0, ge=0,
        description="an ingested event may lie at most this far ahead of the server clock",
    )
    window_length: int = Field(
        default=FeatureSpec().window_len, gt=0,
        description="events kept per window while no model is loaded (else the model's)",
    )
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
        description="threads per process of a model call: ONNX Runtime's intra-op pool and "
        "the item search's BLAS and OpenMP pools; 0 = all cores (spinning pool threads cost "
        "more CPU than they save on micro-batches of small windows)",
    )
    int8: bool = Field(
        default=False,
        description="serve the artifact's model.int8.onnx (`seqcast train --int8`, checked "
        "against its own checksum in the manifest) instead of model.onnx",
    )
    reload_poll_seconds: float = Field(default=5.0, ge=0)
    log_level: str = "INFO"
    redis_key_prefix: str = Field(default="seqcast", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    seen_ids_per_user: int = Field(
        default=1000, gt=0, description="event ids remembered per user for de-duplication"
    )
    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    metrics_key: SecretStr | None = Field(
        default=None, description="when set, /metrics answers only with this key, in X-API-Key "
        "or `Authorization: Bearer`; None = open"
    )
    metrics_port: int | None = Field(
        default=None, gt=0, lt=65536,
        description="serve /metrics on this port (on metrics_host) instead of the API's port",
    )
    metrics_host: str = Field(default="127.0.0.1", description="the address of metrics_port")
    docs: DocsAccess | None = Field(
        default=None, description="/docs, /redoc, /openapi.json: open, key (an API key in "
        "X-API-Key) or off; None = open in development, key in production",
    )
    erasure_rewrite_seconds: float = Field(
        default=60.0, ge=0,
        description="longest wait from an erasure to the rewrite of the Redis append-only "
        "file that drops the user's events (at most one rewrite per node this often); "
        "0 = never (the operator rewrites)",
    )

    live_sample_share: float = Field(
        default=0.1, ge=0, le=1,
        description="share of served user predictions kept beside the window and scored when "
        "their outcome arrives (live accuracy); 0 = none",
    )
    live_pending_per_user: int = Field(
        default=4, gt=0, le=64, description="served predictions kept per user awaiting their "
        "outcome (the latest ones)",
    )
    live_grace_seconds: int = Field(
        default=3600, ge=0, description="a kept prediction lives for the model's horizon plus "
        "this long; one whose user sends nothing in that time is never scored",
    )
    candidate_artifact: Path | None = Field(
        default=None, description="a second artifact served beside artifact_dir: in shadow or "
        "A/B mode (candidate_mode); None = no candidate",
    )
    candidate_mode: CandidateMode = Field(
        default="shadow", description="shadow: the candidate also scores a sampled share of "
        "requests, after the answer, never answering; ab: it answers the users whose id hashes "
        "into candidate_share",
    )
    candidate_share: float = Field(
        default=0.1, ge=0, le=1,
        description="shadow: share of requests the candidate scores too; ab: share of users "
        "it answers (a stable hash of the user id)",
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

    @property
    def docs_access(self) -> DocsAccess:
        if self.docs is not None:
            return self.docs
        return "key" if self.env == "production" else "open"


def load_settings() -> Settings:
    """The settings of this environment; InvalidSettings names each broken rule and its
    variable, without the values."""
    try:
        return Settings()
    except ValidationError as exc:
        rules = []
        for error in exc.errors(include_input=False, include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            if error["loc"]:  # a field's own rule; a cross-field rule names its variables
                message = f"{ENV_PREFIX}{str(error['loc'][0]).upper()}: {message}"
            rules.append(message)
        raise InvalidSettings("invalid configuration: " + "; ".join(rules)) from None
