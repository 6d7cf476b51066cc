"""Prometheus metrics, one registry per application (so tests can run several side by side)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric the router exports at `/metrics`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
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
        self.worker_runs = Counter(
            "payrouter_requery_checks_total",
            "Payments looked at by the re-query worker, by what it found.",
            ["outcome"],
            registry=r,
        )
