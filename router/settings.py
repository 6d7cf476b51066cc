"""Process settings, read once from the environment at start-up."""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import overload
from urllib.parse import SplitResult, urlsplit


class ConfigurationError(Exception):
    """Something the operator set up cannot be used: an environment variable, the store it
    names, a port, the routing file. The command line shows `line()` and exits with 2.

    The message must name what to fix (the variable, the port, the file) and never carry a
    secret's value.
    """

    def line(self) -> str:
        """The one line shown to the operator."""
        return " ".join(str(self).split())


class SettingsError(ConfigurationError, ValueError):
    """An environment variable with a value payrouter cannot use."""


NO_DATABASE = (
    "PAYROUTER_DATABASE_URL is not set: routers that share a Redis (PAYROUTER_REDIS_URL) "
    "must share a database; set it to postgresql://USER:PASS@HOST:PORT/DB"
)
"""Why `payrouter serve` refuses Redis without a database (the contract's one line)."""


DEFAULT_WEBHOOK_SCHEDULE: tuple[float, ...] = (
    0,
    5,
    300,
    1800,
    7200,
    18000,
    36000,
    36000,
    86400,
    86400,
)
"""0s, 5s, 5m, 30m, 2h, 5h, 10h, 10h, 1d, 1d: the Standard Webhooks example, extended to
about three days in all."""


DEFAULT_RETENTION_S = 7 * 86400.0
"""PAYROUTER_REDIS_RETENTION unset: a week."""


@dataclass(frozen=True)
class Workers:
    """Timings of the background worker that re-queries and expires payments."""

    poll_interval_s: float = 1.0
    requery_after_s: float = 30.0
    """First re-query of a pending payment, in case its notification is lost."""
    requery_max_s: float = 300.0
    processing_grace_s: float = 30.0
    """A payment still `processing` this long after creation lost its creating process."""
    lease_s: float | None = None
    """How long an entry a worker claimed is hidden from the other processes; a worker killed
    mid-settle delays that entry by at most this. `None`: the shortest safe lease for the
    routing file in force (`router.payments.worker.minimum_lease_s`)."""
    batch: int = 10
    """Entries one pass claims and works on at once (each lease starts at the claim, so a
    pass never claims more than it starts at once)."""


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    database_url: str | None = field(default=None, repr=False)
    """The record's PostgreSQL (`postgresql://USER:PASS@HOST:PORT/DB`); None: the embedded
    database of the sandbox (`router.record`)."""
    routing_path: Path = Path("config/routing.yaml")
    risk_path: Path | None = None
    """The risk file (`PAYROUTER_RISK`, else `config/risk.yaml` if there is one); None: no
    rate limits and no risk rules."""
    sandbox_dir: Path = Path(".sandbox")
    """The sandbox folder (PAYROUTER_SANDBOX_DIR): where the embedded database lives when
    PAYROUTER_DATABASE_URL is unset."""
    admin_token: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    """How channels reach this router (callback URLs); default http://host:port."""
    secret_key: bytes | None = field(default=None, repr=False)
    default_expires_in_s: int = 7200
    cache_s: float = 5.0
    """How long a router keeps merchants and API keys it has read."""
    health_cache_s: float = 0.25
    """How long a router reuses the breaker states it has read (its own changes: at once)."""
    config_poll_s: float = 1.0
    """How often the routing file is checked for changes."""
    webhook_schedule: tuple[float, ...] = DEFAULT_WEBHOOK_SCHEDULE
    """Waits before each delivery attempt (the first is immediate); then a dead letter."""
    webhook_timeout_s: float = 10.0
    webhook_connect_s: float = 3.0
    webhook_claim_idle_s: float = 30.0
    """An outbox entry taken but not acknowledged this long is taken over by another process
    (the one that took it died)."""
    create_deadline_s: float = 20.0
    """How long a create may spend trying candidate accounts before it stops failing over."""
    idempotency_lease_s: float = 10.0
    """How long a running request owns its Idempotency-Key without renewing it (it renews
    every third of this while it runs): a retry after a crash waits at most this long."""
    workers: Workers = field(default_factory=Workers)
    redis_wait_replicas: int = 0
    """After the writes of a create (payment or refund), wait until this many replicas have
    them (`WAIT`); 0: do not wait (Redis replication is asynchronous)."""
    redis_wait_s: float = 0.1
    """The longest such a wait lasts; a create is answered anyway after it (counted)."""
    log_format: str | None = None
    """`json` (one object per line) or `console` (readable); None: the command's own
    (`serve`: json; `dev` and the others: console)."""
    redis_retention_s: float = DEFAULT_RETENTION_S
    """How long a payment, refund or event stays in Redis once it is final and recorded;
    older ones are read from the record (`router.record.drain`)."""
    recon_at: time | None = None
    """When, in China time, one `serve` process reconciles yesterday for every account
    (`PAYROUTER_RECON_AT`, `HH:MM`, 04:00 when unset); None (`off`, and settings made in code):
    never by itself (`router.recon.schedule`)."""

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            redis_url=_redis_url(env.get("PAYROUTER_REDIS_URL") or None),
            database_url=database_url(env.get("PAYROUTER_DATABASE_URL") or None),
            routing_path=Path(env.get("PAYROUTER_ROUTING") or "config/routing.yaml"),
            risk_path=_risk_path(env.get("PAYROUTER_RISK") or None),
            sandbox_dir=Path(env.get("PAYROUTER_SANDBOX_DIR") or ".sandbox"),
            admin_token=env.get("PAYROUTER_ADMIN_TOKEN") or None,
            host=env.get("PAYROUTER_HOST") or "127.0.0.1",
            port=_port(env.get("PAYROUTER_PORT") or "8080"),
            public_url=_public_url(env.get("PAYROUTER_PUBLIC_URL") or None),
            secret_key=_secret_key(env.get("PAYROUTER_SECRET_KEY")),
            webhook_schedule=_schedule(env.get("PAYROUTER_WEBHOOK_SCHEDULE")),
            webhook_claim_idle_s=_seconds(env, "PAYROUTER_WEBHOOK_CLAIM_IDLE", 30.0),
            idempotency_lease_s=_seconds(env, "PAYROUTER_IDEMPOTENCY_LEASE", 10.0),
            workers=Workers(
                requery_after_s=_seconds(env, "PAYROUTER_REQUERY_AFTER", 30.0),
                processing_grace_s=_seconds(env, "PAYROUTER_PROCESSING_GRACE", 30.0),
                lease_s=_seconds(env, "PAYROUTER_WORKER_LEASE", None),
            ),
            redis_wait_replicas=_count(env, "PAYROUTER_REDIS_WAIT_REPLICAS"),
            redis_wait_s=_seconds(env, "PAYROUTER_REDIS_WAIT_TIMEOUT", 0.1),
            log_format=_log_format(env.get("PAYROUTER_LOG_FORMAT") or None),
            redis_retention_s=_duration(env, "PAYROUTER_REDIS_RETENTION", DEFAULT_RETENTION_S),
            recon_at=_time_of_day(env.get("PAYROUTER_RECON_AT") or "04:00"),
        )


def _time_of_day(raw: str) -> time | None:
    """`HH:MM` (24 h) or `off`, for PAYROUTER_RECON_AT."""
    if raw.strip().lower() == "off":
        return None
    try:
        hours, minutes = raw.strip().split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError(raw)
        return time(int(hours), int(minutes))
    except ValueError:
        raise SettingsError(
            f"PAYROUTER_RECON_AT must be a time of day HH:MM (China time) or off, not {raw!r}"
        ) from None


def _risk_path(value: str | None) -> Path | None:
    if value is not None:
        return Path(value)
    default = Path("config/risk.yaml")
    return default if default.exists() else None


def redacted(url: str) -> str:
    """`url` with any password replaced by `***`, for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(unparsable URL)"
    if password is not None:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    if parts.query:
        # redis-py also takes the password as a query parameter, and a Sentinel URL its
        # Sentinels' password as `sentinel_password`.
        query = re.sub(r"(?i)(^|&)((?:sentinel_)?password=)[^&]*", r"\1\2***", parts.query)
        parts = parts._replace(query=query)
    return parts.geturl()


def _split(name: str, value: str) -> SplitResult:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as exc:
        raise SettingsError(f"{name} is not a valid URL ({exc}): {redacted(value)}") from None
    return parts


def _redis_url(value: str | None) -> str | None:
    """A URL redis-py can connect to, naming a host (or a socket path for unix://)."""
    if value is None:
        return None
    name = "PAYROUTER_REDIS_URL"
    scheme = value.partition("://")[0].lower()
    if scheme in ("redis+cluster", "redis+sentinel"):
        # Several HOST:PORT in one URL: `router.store.connect` reads these, with every check.
        return value
    parts = _split(name, value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(
            f"{name} must be a redis://, rediss://, unix://, redis+cluster:// or "
            f"redis+sentinel:// URL, not {redacted(value)!r}"
        )
    if parts.scheme == "unix" and not parts.path:
        raise SettingsError(f"{name} must name a socket path: unix:///run/redis.sock")
    if parts.scheme != "unix" and not parts.hostname:
        raise SettingsError(
            f"{name} must name a host, e.g. redis://127.0.0.1:6379/0, not {redacted(value)!r}"
        )
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not (database.isascii() and database.isdigit()):
        raise SettingsError(
            f"{name}: the database after the host must be a number, not {database!r}"
        )
    return value


DATABASE_QUERY = frozenset({"sslmode", "ssl"})
"""What the query of PAYROUTER_DATABASE_URL may set: the TLS mode (libpq's `sslmode` or
asyncpg's `ssl`: disable, prefer, require, verify-ca, verify-full)."""
SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


def database_url(value: str | None) -> str | None:
    """A `postgresql://USER:PASS@HOST:PORT/DB` URL, checked; raises `SettingsError` naming
    PAYROUTER_DATABASE_URL (password redacted)."""
    if value is None:
        return None
    name = "PAYROUTER_DATABASE_URL"
    parts = _split(name, value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError(
            f"{name} must be a postgresql://USER:PASS@HOST:PORT/DB URL, not {redacted(value)!r}"
        )
    if not parts.hostname:
        raise SettingsError(
            f"{name} must name a host, e.g. postgresql://payrouter@127.0.0.1:5432/payrouter, "
            f"not {redacted(value)!r}"
        )
    database = parts.path.strip("/")
    if not database or "/" in database:
        raise SettingsError(f"{name} must name one database after the host: {redacted(value)!r}")
    for item in filter(None, parts.query.split("&")):
        key, _, mode = item.partition("=")
        if key not in DATABASE_QUERY:
            raise SettingsError(
                f"{name}: unknown query parameter {key!r} (only sslmode or ssl may be set)"
            )
        if mode not in SSL_MODES:
            raise SettingsError(f"{name}: {key} must be one of {', '.join(sorted(SSL_MODES))}")
    return value


def _public_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = _split("PAYROUTER_PUBLIC_URL", value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"PAYROUTER_PUBLIC_URL must be an http(s) URL naming a host, not {value!r}"
        )
    return value


def _port(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
        raise SettingsError(f"PAYROUTER_PORT must be a port number, not {value!r}")
    return int(value)


@overload
def _seconds(env: Mapping[str, str], name: str, default: float) -> float: ...
@overload
def _seconds(env: Mapping[str, str], name: str, default: None) -> float | None: ...
def _seconds(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


def _count(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name) or "0"
    if not (raw.isascii() and raw.isdigit() and int(raw) <= 16):
        raise SettingsError(f"{name} must be a whole number from 0 to 16, not {raw!r}")
    return int(raw)


def parse_schedule(text: str) -> list[float]:
    """`0s,5s,5m,30m,2h` → seconds. Raises ValueError naming the bad item."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    out = []
    for item in (part.strip() for part in text.split(",")):
        digits = item[:-1]
        if len(item) < 2 or item[-1] not in units or not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"bad duration {item!r} (use e.g. 0s, 5s, 5m, 2h, 1d)")
        out.append(float(int(item[:-1]) * units[item[-1]]))
    return out


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    """One positive duration such as `30s`, `5m`, `2h` or `7d`."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        values = parse_schedule(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
    if len(values) != 1:
        raise SettingsError(f"{name} must be one duration such as 30s or 7d, not {raw!r}")
    value = values[0]
    if value <= 0:
        raise SettingsError(f"{name} must be longer than 0s, not {raw!r}")
    return value


def _schedule(value: str | None) -> tuple[float, ...]:
    if not value:
        return DEFAULT_WEBHOOK_SCHEDULE
    try:
        return tuple(parse_schedule(value))
    except ValueError as exc:
        raise SettingsError(f"PAYROUTER_WEBHOOK_SCHEDULE: {exc}") from None


def _secret_key(value: str | None) -> bytes | None:
    if not value:
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        # Never echo the value: it is a secret even when malformed.
        raise SettingsError("PAYROUTER_SECRET_KEY must be 32 bytes, base64-encoded")
    return key


def _log_format(value: str | None) -> str | None:
    if value is not None and value not in ("json", "console"):
        raise SettingsError(f"PAYROUTER_LOG_FORMAT must be json or console, not {value!r}")
    return value
