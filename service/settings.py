"""The service's configuration: one pydantic-settings object per process, `NST_` environment names.

This is the only place that reads the environment; api/ and worker/ both import it (no torch).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nst_core.params import StyleParams

# Used by `nst api` / `nst worker` when NST_REDIS_URL is unset (`nst up` starts its own Redis).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    """Every knob of the job service; names are a contract (see docs/API.md and the README)."""

    model_config = SettingsConfigDict(env_prefix="NST_", extra="ignore")

    # Where things live.
    redis_url: str | None = Field(None, description="Redis for queue and job store.")
    redis_sentinels: str = Field(
        "", description="host:port,... of Redis Sentinels; when set, they name the master."
    )
    redis_master_name: str = Field("nst", description="The master's name in the Sentinels.")
    redis_wait_replicas: int = Field(
        0, ge=0, description="Replicas that must acknowledge each job status change (WAIT); 0 off.")
    redis_wait_timeout_ms: int = Field(
        500, ge=1, description="How long a status change waits for them; then it goes on, logged.")
    data_dir: Path = Field(Path("./data"), description="Uploads, results, embedded Redis files.")
    storage: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = Field(None, description="Any S3-compatible endpoint.")
    s3_prefix: str = ""
    s3_region: str = "us-east-1"
    queue: str = Field("nst", description="The one Celery queue every worker consumes.")

    # Engine.
    weights: str = Field("original", description="`original`, `torchvision` or a file path.")
    device: str = Field("auto", description="`auto`, `cpu`, `cuda` or `cuda:N` (the engine's rule).")
    torch_threads: int = Field(
        0, ge=0, description="CPU threads per worker process; 0 = cores / worker concurrency."
    )

    # Auth: "key:tenant,key2:tenant". No keys at all needs NST_OPEN_MODE=true (loopback only).
    api_keys: str = Field("", repr=False)
    open_mode: bool = Field(False, description="No API keys: every caller is tenant 'public'.")
    host: str = "127.0.0.1"
    port: int = 8000
    limit_concurrency: int = Field(
        200, ge=1, description="Open connections per API process; beyond it 503 at once."
    )
    keep_alive_seconds: float = Field(
        5.0, gt=0, description="Idle connection timeout, also before the first request."
    )

    # Input limits.
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Per uploaded file.")
    max_pixels: int = Field(40_000_000, ge=1024, description="Per image, from its header.")
    max_request_pixels: int = Field(
        60_000_000, ge=1024, description="All images of one request together, from headers."
    )
    max_concurrent_decodes: int = Field(2, ge=1, description="Images decoded at once per API.")
    # A 2048 px job peaked at 7.5 GiB RSS with bf16 convs on CPU, about 10 GB in fp32
    # (bench/RESULTS.md): workers without native bf16 and under 12 GB want 1024.
    max_size: int = Field(2048, ge=32, description="Largest output long side.")
    max_steps: int = Field(2000, ge=1, description="Largest total iterations of one job.")
    max_styles: int = Field(4, ge=1)

    # Backpressure.
    max_active_jobs_per_tenant: int = Field(10, ge=1, description="Unfinished jobs per tenant.")
    max_queue_depth: int = Field(200, ge=1, description="Queued jobs, all tenants.")
    retry_after_seconds: int = 10

    # Lifetimes and reliability.
    job_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)
    task_soft_time_limit: int = Field(1800, ge=1, description="Seconds; the job fails `timeout`.")
    task_hard_time_limit: int = Field(1860, ge=2, description="Seconds; the child is killed.")
    visibility_timeout: int = Field(7200, description="Broker redelivery of unacked messages.")
    max_attempts: int = Field(3, ge=1, description="Deliveries before `attempts_exhausted`.")
    lease_seconds: float = Field(30.0, gt=0, description="A running job's lease without heartbeat.")
    reaper_interval_seconds: float = Field(10.0, gt=0)
    requeue_after_seconds: float = Field(
        900.0, gt=0, description="Re-send the message of a job queued this long (lost message)."
    )
    unsent_after_seconds: float = Field(
        5.0, gt=0, description="Publish a created job whose API did not (publish failed, API died)."
    )
    progress_interval_seconds: float = Field(0.25, ge=0, description="Throttle of progress writes.")

    # Webhooks (delivered by `nst webhooks`, see webhooks/) and the event stream.
    webhook_secret: str = Field(
        "", repr=False, description="whsec_... secrets, comma-separated; all sign (rotation).")
    webhook_allowed_hosts: str = Field(
        "", description="Hosts exempt from the SSRF guard (comma-separated), e.g. an internal one.")
    webhook_queue: str = Field("nst-webhooks", description="The Celery queue of deliveries.")
    webhook_timeout_seconds: float = Field(5.0, gt=0, description="Connect and read timeout.")
    webhook_retry_base_seconds: float = Field(10.0, gt=0, description="First retry delay.")
    webhook_retry_max_delay_seconds: float = Field(1800.0, gt=0, description="Longest delay.")
    webhook_retry_window_seconds: float = Field(
        8 * 3600.0, gt=0, description="Retries stop this long after the first try.")
    webhook_poll_seconds: float = Field(0.5, gt=0, description="How often due deliveries are sent.")
    sse_heartbeat_seconds: float = Field(15.0, gt=0, description="Comment lines on idle streams.")
    max_streams_per_tenant: int = Field(5, ge=1, description="Open event streams per tenant.")

    log_level: str = "INFO"

    @field_validator("redis_url", "s3_bucket", "s3_endpoint_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # docker-compose passes `${VAR:-}` as an empty string; that means "not configured".
        return value or None

    @field_validator("device")
    @classmethod
    def _device_the_engine_knows(cls, value: str) -> str:
        StyleParams.model_validate({"device": value})  # the engine's pattern, written once
        return value

    @model_validator(mode="after")
    def _limits_consistent(self) -> Settings:
        if self.task_hard_time_limit <= self.task_soft_time_limit:
            raise ValueError("NST_TASK_HARD_TIME_LIMIT must exceed NST_TASK_SOFT_TIME_LIMIT")
        # Otherwise Redis hands a long job's message to a second worker while the first still runs.
        if self.visibility_timeout <= self.task_hard_time_limit:
            raise ValueError("NST_VISIBILITY_TIMEOUT must exceed NST_TASK_HARD_TIME_LIMIT")
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("NST_STORAGE=s3 needs NST_S3_BUCKET")
        if self.sentinels() and self.redis_url:
            raise ValueError("NST_REDIS_SENTINELS and NST_REDIS_URL are exclusive: choose one")
        if self.tenant_by_key() and self.open_mode:  # also fails on a malformed NST_API_KEYS
            raise ValueError("NST_OPEN_MODE=true and NST_API_KEYS are exclusive: choose one")
        return self

    @property
    def broker_url(self) -> str:
        """The Redis URL to use: the configured one or the local default; with Sentinels,
        kombu's `sentinel://` list (the master is looked up by NST_REDIS_MASTER_NAME)."""
        if self.sentinels():
            return ";".join(f"sentinel://{host}:{port}/0" for host, port in self.sentinels())
        return self.redis_url or DEFAULT_REDIS_URL

    def sentinels(self) -> list[tuple[str, int]]:
        """NST_REDIS_SENTINELS as (host, port) pairs; empty when Sentinel is not used."""
        pairs = []
        for item in filter(None, (p.strip() for p in self.redis_sentinels.split(","))):
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"NST_REDIS_SENTINELS item {item!r} is not host:port")
            pairs.append((host, int(port)))
        return pairs

    @property
    def heartbeat_seconds(self) -> float:
        """How often a running job renews its lease: several times per lease."""
        return self.lease_seconds / 3

    def check_api_auth(self, host: str) -> None:
        """Refuse to serve without keys unless open mode was chosen, and open mode off loopback."""
        if not self.open_mode and not self.tenant_by_key():
            raise ValueError("NST_API_KEYS is empty: set key:tenant pairs, or NST_OPEN_MODE=true "
                             "to serve without auth on loopback")
        if self.open_mode and not is_loopback(host):
            raise ValueError(f"NST_OPEN_MODE=true serves without auth: loopback only, not {host!r}")

    def webhook_secrets(self) -> list[str]:
        """Every configured webhook secret; deliveries are signed with each (rotation)."""
        return [p.strip() for p in self.webhook_secret.split(",") if p.strip()]

    def webhook_hosts(self) -> frozenset[str]:
        """NST_WEBHOOK_ALLOWED_HOSTS, lower-cased, brackets off IPv6 literals."""
        return frozenset(h.strip().strip("[]").lower()
                         for h in self.webhook_allowed_hosts.split(",") if h.strip())

    def tenant_by_key(self) -> dict[str, str]:
        """Parse NST_API_KEYS into {key: tenant}; a tenant may have several keys (rotation).

        Strict on purpose: a stray comma or a duplicate must stop the process, never mean "no auth".
        """
        if not self.api_keys.strip():
            return {}
        pairs: dict[str, str] = {}
        for n, item in enumerate(self.api_keys.split(","), start=1):
            key, sep, tenant = item.strip().rpartition(":")
            if not sep or not key.strip() or not tenant.strip():
                raise ValueError(f"NST_API_KEYS item {n} is not key:tenant (empty key or tenant, "
                                 "or a stray comma)")
            if key in pairs:
                raise ValueError(f"NST_API_KEYS item {n} repeats a key")
            pairs[key] = tenant
        return pairs


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
