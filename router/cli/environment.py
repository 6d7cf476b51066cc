"""The `PAYROUTER_*` environment variables as `payrouter serve --help` lists them.

Defaults are read from `router.settings` (a `Settings` made from an empty environment), not
written again here; `tests/ops/test_cli.py` checks that every variable read anywhere in
`router/` and `channels/` is listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from router.settings import Settings


@dataclass(frozen=True)
class Variable:
    """One variable: its name, how to find its default in `Settings`, and what it sets."""

    name: str
    default: Callable[[Settings], Any] | str
    meaning: str


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


VARIABLES: tuple[Variable, ...] = (
    Variable("PAYROUTER_REDIS_URL", "unset: the embedded store (sandbox only)", "the Redis store"),
    Variable(
        "PAYROUTER_DATABASE_URL",
        "unset: the embedded database (sandbox only)",
        "the record's PostgreSQL, postgresql://USER:PASS@HOST:PORT/DB",
    ),
    Variable("PAYROUTER_ROUTING", lambda s: s.routing_path, "the routing file"),
    Variable(
        "PAYROUTER_RISK",
        "config/risk.yaml if present, else no rate limits and no risk rules",
        "the risk file (rate limits, risk rules)",
    ),
    Variable(
        "PAYROUTER_REDIS_RETENTION",
        lambda s: _duration(s.redis_retention_s),
        "how long a final, recorded payment, refund or event stays in Redis",
    ),
    Variable(
        "PAYROUTER_RECON_AT",
        "04:00",
        "when (HH:MM, China time) one router reconciles and settles yesterday; off: never",
    ),
    Variable("PAYROUTER_HOST", lambda s: s.host, "address to listen on"),
    Variable("PAYROUTER_PORT", lambda s: s.port, "port to listen on"),
    Variable(
        "PAYROUTER_PUBLIC_URL", "http://HOST:PORT", "how channels reach this router (callbacks)"
    ),
    Variable(
        "PAYROUTER_SECRET_KEY",
        "unset: a key kept in Redis",
        "32 bytes, base64: encrypts merchants' secrets at rest",
    ),
    Variable(
        "PAYROUTER_ADMIN_TOKEN",
        "unset: the admin API answers 403",
        "bearer token of the admin API (/admin/...)",
    ),
    Variable(
        "PAYROUTER_REQUERY_AFTER",
        lambda s: s.workers.requery_after_s,
        "seconds before a pending payment is first re-queried",
    ),
    Variable(
        "PAYROUTER_PROCESSING_GRACE",
        lambda s: s.workers.processing_grace_s,
        "seconds before a payment left processing is settled by the worker",
    ),
    Variable(
        "PAYROUTER_WORKER_LEASE",
        "3 x the longest account timeout + 5",
        "seconds a claimed re-query entry stays hidden from other processes",
    ),
    Variable(
        "PAYROUTER_WEBHOOK_SCHEDULE",
        lambda s: ",".join(_duration(w) for w in s.webhook_schedule),
        "webhook retry waits; then a dead letter",
    ),
    Variable(
        "PAYROUTER_WEBHOOK_CLAIM_IDLE",
        lambda s: s.webhook_claim_idle_s,
        "seconds before a dead process's deliveries are taken over",
    ),
    Variable(
        "PAYROUTER_IDEMPOTENCY_LEASE",
        lambda s: s.idempotency_lease_s,
        "seconds a dead process's request keeps its Idempotency-Key",
    ),
    Variable(
        "PAYROUTER_REDIS_WAIT_REPLICAS",
        lambda s: s.redis_wait_replicas,
        "replicas that must have a create's writes before it is answered",
    ),
    Variable(
        "PAYROUTER_REDIS_WAIT_TIMEOUT",
        lambda s: s.redis_wait_s,
        "seconds such a wait may last",
    ),
    Variable(
        "PAYROUTER_LOG_FORMAT",
        "json for serve, console for the other commands",
        "json (one object per line) or console (readable)",
    ),
    Variable(
        "PAYROUTER_SANDBOX_DIR",
        ".sandbox",
        "sim, dev, db: where sandbox keys and the embedded database live",
    ),
)
"""Every variable, in the order of README's configuration table."""


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def default_of(variable: Variable, settings: Settings | None = None) -> str:
    """The default `variable` has, as shown: from `Settings` when it is one of its fields."""
    if isinstance(variable.default, str):
        return variable.default
    return _shown(variable.default(settings or Settings.from_env({})))


def help_text() -> str:
    """The variables as an epilog of `serve --help` (click keeps `\\b` blocks as written)."""
    settings = Settings.from_env({})
    width = max(len(v.name) for v in VARIABLES)
    lines = ["Environment (default in brackets):", "", "\b"]
    for variable in VARIABLES:
        default = default_of(variable, settings)
        lines.append(f"  {variable.name:<{width}}  {variable.meaning} [{default}]")
    return "\n".join(lines)
