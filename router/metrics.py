"""Prometheus metrics, one registry per application (so tests can run several side by side).

Every label takes its values from a bounded set (`LABEL_SOURCES`; `tests/ops/test_metrics.py`
checks a real scrape against it): the accounts and rules of the routing file, the routes of
the application, HTTP methods and status codes, and literals in the code. Nothing a client
sends (a path, a method name, an id) becomes a label value: an unknown method is `OTHER`, a
path no route matches is `unmatched`. Only a routing-file change adds series (a new account
or rule); the per-account gauges are rebuilt at every scrape, so a removed account goes away.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

LATENCY_BUCKETS = (
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
)
"""Seconds. Chosen from what was measured (README "Benchmarks", `payrouter bench`, 2026-11-22
and 11-29): the router's own part of a create is p50 2.8 / p99 3.2 ms at a steady rate and
p99 12-18 ms under load, a simulated channel answers in 3-5 ms, and the wallets' production
APIs in tens to hundreds of ms. So: fine steps from 2.5 ms to 50 ms for the router and the
simulators, the create SLO's 1 s threshold and the breaker's 2 s latency SLO as edges, and
the ends at the channels' default total timeout (10 s), the create deadline (20 s) and the
webhook timeout's ceiling (30 s)."""

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted under their own name; any other is counted as `OTHER`."""

LABEL_SOURCES: dict[str, str] = {
    "account": "a channel account of the routing file in force (config-bound)",
    "from_account": "a channel account of the routing file in force (config-bound)",
    "wallet": "a wallet of the channel registry: wechat, alipay, unionpay",
    "rule": "a rule name of the routing file or of the risk file, or `default`",
    "operation": "a channel operation: create, query, close, refund, query_refund",
    "outcome": "a literal of the code that counts it (ok, unavailable, delivered, refused...)",
    "reason": "a failover kind: unavailable, unknown, breaker_open",
    "result": "what became of a hedged create: won, lost, failed, budget_spent, no_account",
    "method": "an HTTP method of HTTP_METHODS, or OTHER",
    "route": "a route of the application (its pattern, not the path), or `unmatched`",
    "status": "an HTTP status code (3 digits), or a payment/refund status of the contract",
    "source": "what changed a payment or refund: create, notification, query, close, ...",
    "write": "what a create wrote: payment, payment_status, refund",
    "record": "a kind of store record: event, event_attempt",
    "version": "the routing or risk file's digest, or `off` with no risk file (one series per "
    "process: `Info` replaces it)",
    "kind": "a literal of the code: a record kind (payment, refund, event, merchant, api_key, "
    "notification; pay, re, evt) or a rate-limit budget (create, read, refund, global)",
    "decision": "a risk decision: allow, flag, block",
    "action": "a risk rule's action: block, flag, limit",
}
"""Every label any metric has, and where its values come from."""


def http_method(method: str) -> str:
    """`method` as a label value: a client can send any token as a method."""
    return method if method in HTTP_METHODS else "OTHER"


class Metrics:
    """Every metric the router exports at `/metrics`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Process health (CPU, memory, file descriptors, start time) beside the router's own.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.channel_calls = Counter(
            "payrouter_channel_calls_total",
            "Calls to channel accounts by operation and outcome.",
            ["account", "operation", "outcome"],
            registry=r,
        )
        self.channel_latency = Histogram(
            "payrouter_channel_call_duration_seconds",
            "Time spent in channel calls.",
            ["account", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.notifications = Counter(
            "payrouter_channel_notifications_total",
            "Channel callbacks received, by account and outcome (accepted or why refused).",
            ["account", "outcome"],
            registry=r,
        )
        self.unreplicated = Counter(
            "payrouter_redis_unreplicated_writes_total",
            "Creates answered before PAYROUTER_REDIS_WAIT_REPLICAS replicas had their writes "
            "(the wait timed out), by what was written.",
            ["write"],
            registry=r,
        )
        self.status_changes = Counter(
            "payrouter_payment_status_changes_total",
            "Payment status changes, by new status and what caused them.",
            ["status", "source"],
            registry=r,
        )
        self.refund_status_changes = Counter(
            "payrouter_refund_status_changes_total",
            "Refund status changes, by new status and what caused them.",
            ["status", "source"],
            registry=r,
        )
        self.conflicts = Counter(
            "payrouter_payment_conflicts_total",
            "Channel reports that contradict a payment or refund (its final status, amount or "
            "currency): not applied, need review.",
            ["account"],
            registry=r,
        )
        self.http_requests = Counter(
            "payrouter_http_requests_total",
            "HTTP requests served, by method, route and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "payrouter_http_request_duration_seconds",
            "Time to serve HTTP requests.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.config_reloads = Counter(
            "payrouter_config_reloads_total",
            "Routing config reload attempts: applied, unchanged or refused.",
            ["outcome"],
            registry=r,
        )
        for outcome in ("applied", "unchanged", "refused"):
            # Exported at 0 from the start, so the first refusal is an increase to alert on.
            self.config_reloads.labels(outcome)
        self.config_version = Info(
            "payrouter_config", "The routing config version in force.", registry=r
        )
        self.routing_decisions = Counter(
            "payrouter_routing_decisions_total",
            "Payments routed, by the rule that matched and the account that took them.",
            ["rule", "account"],
            registry=r,
        )
        self.failovers = Counter(
            "payrouter_failovers_total",
            "Times a payment moved on from one account to the next, by why.",
            ["from_account", "reason"],
            registry=r,
        )
        self.hedges = Counter(
            "payrouter_hedges_total",
            "Creates that were slow to answer, by account and what became of the hedge: sent "
            "then won or lost, or not sent (budget spent, no account to send it to, or the "
            "router itself had stalled and the create answered in the grace that followed).",
            ["account", "result"],
            registry=r,
        )
        self.health_score = Gauge(
            "payrouter_channel_health_score",
            "Health score 0..1 per account (success rate, lowered by slowness), shared state.",
            ["account"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "payrouter_channel_breaker_state",
            "Breaker state per account: 0 closed, 1 half-open, 2 open (forced included).",
            ["account"],
            registry=r,
        )
        self.window_calls = Gauge(
            "payrouter_channel_window_calls",
            "Calls in the account's sliding health window, shared by all processes.",
            ["account", "outcome"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "payrouter_webhook_deliveries_total",
            "Webhook delivery attempts by outcome (delivered, failed, gone, dead, deferred...).",
            ["outcome"],
            registry=r,
        )
        self.webhook_latency = Histogram(
            "payrouter_webhook_delivery_duration_seconds",
            "Time merchants' endpoints took to answer a webhook.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.webhook_dead = Counter(
            "payrouter_webhook_dead_letters_total",
            "Events that became dead letters after their last attempt (or a 410).",
            registry=r,
        )
        self.webhook_lag = Gauge(
            "payrouter_webhook_queue_lag_seconds",
            "How overdue the oldest scheduled webhook retry is (0 when none is due).",
            registry=r,
        )
        self.webhook_outbox = Gauge(
            "payrouter_webhook_outbox_entries",
            "Events waiting in the merchants' outbox streams for a first attempt.",
            registry=r,
        )
        self.record_lag = Gauge(
            "payrouter_record_lag_seconds",
            "Age of the oldest change not yet copied to the record (0: none waiting).",
            registry=r,
        )
        self.record_drained = Counter(
            "payrouter_record_drained_total",
            "Objects copied to the record by this process's drainer, by kind.",
            ["kind"],
            registry=r,
        )
        self.record_drain_errors = Counter(
            "payrouter_record_drain_errors_total",
            "Drain batches the record refused or could not take (retried).",
            registry=r,
        )
        self.record_batch = Histogram(
            "payrouter_record_drain_batch_size",
            "Change entries per drained batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.record_retired = Counter(
            "payrouter_record_retired_total",
            "Final, recorded objects removed from Redis after PAYROUTER_REDIS_RETENTION, by kind.",
            ["kind"],
            registry=r,
        )
        # Every kind from the start: a scrape shows the same series before and after the
        # first drain (and an alert on a kind's rate has a series to read).
        for kind in ("payment", "refund", "event", "merchant", "api_key", "notification"):
            self.record_drained.labels(kind)
        for kind in ("pay", "re", "evt"):
            self.record_retired.labels(kind)
        self.record_unchecked_orders = Counter(
            "payrouter_record_unchecked_orders_total",
            "Creates whose merchant_order_id was not in Redis and could not be checked "
            "against the record (unreachable): made without the check.",
            registry=r,
        )
        self.unreadable_records = Counter(
            "payrouter_store_unreadable_records_total",
            "Store records that cannot be decoded and were left out of answers, by kind "
            "(each counted once per process): repair or remove them.",
            ["record"],
            registry=r,
        )
        self.store_up = Gauge(
            "payrouter_store_up",
            "1 when the store answered this scrape's reads, 0 when it could not be reached.",
            registry=r,
        )
        self.account_info = Gauge(
            "payrouter_channel_account_info",
            "1 for every channel account of the routing file in force, with its wallet (join "
            "on `account` to group other series by wallet).",
            ["account", "wallet"],
            registry=r,
        )
        self.worker_runs = Counter(
            "payrouter_requery_checks_total",
            "Payments looked at by the re-query worker, by what it found.",
            ["outcome"],
            registry=r,
        )
        self.rate_limited = Counter(
            "payrouter_rate_limited_total",
            "Merchant requests refused with 429 by the rate limits, by kind (create, read, "
            "refund).",
            ["kind"],
            registry=r,
        )
        self.risk_decisions = Counter(
            "payrouter_risk_decisions_total",
            "Creates judged by the risk rules, by decision (allow, flag, block).",
            ["decision"],
            registry=r,
        )
        self.risk_rule_hits = Counter(
            "payrouter_risk_rule_hits_total",
            "Risk rules that fired, by rule and action (a limit counts when it blocked).",
            ["rule", "action"],
            registry=r,
        )
        self.risk_rule_errors = Counter(
            "payrouter_risk_rule_errors_total",
            "Risk rules that failed while evaluated (taken as not fired), by rule.",
            ["rule"],
            registry=r,
        )
        self.risk_reloads = Counter(
            "payrouter_risk_config_reloads_total",
            "Risk file reload attempts, by outcome (applied, unchanged, refused).",
            ["outcome"],
            registry=r,
        )
        self.risk_version = Info(
            "payrouter_risk_config",
            "The version (sha256 prefix) of the risk file in force.",
            registry=r,
        )
        # Exported at 0 from the start, as the routing file's reloads: a counter's first
        # count is then an increase the alerts (deploy/prometheus/alerts.yml) can see.
        for outcome in ("applied", "unchanged", "refused"):
            self.risk_reloads.labels(outcome)
        for decision in ("allow", "flag", "block"):
            self.risk_decisions.labels(decision)
        for kind in ("create", "read", "refund"):
            self.rate_limited.labels(kind)
        self.recon_discrepancies = Gauge(
            "payrouter_recon_discrepancies",
            "Discrepancies needing review in the last reconciliation run of each account, by "
            "kind (docs/reconciliation.md).",
            ["account", "kind"],
            registry=r,
        )
        self.recon_last_success = Gauge(
            "payrouter_recon_last_success_timestamp_seconds",
            "When the last reconciliation run of each account ended done (epoch seconds).",
            ["account"],
            registry=r,
        )
        self.recon_lines = Counter(
            "payrouter_recon_lines_total",
            "Statement lines reconciled, by account and result (matched, fixed, needs_review).",
            ["account", "result"],
            registry=r,
        )
        self.recon_duration = Histogram(
            "payrouter_recon_run_duration_seconds",
            "Time a reconciliation run took, by account.",
            ["account"],
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900),
            registry=r,
        )
