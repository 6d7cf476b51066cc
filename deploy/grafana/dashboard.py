"""Generates deploy/grafana/payrouter.json, payrouter's Grafana dashboard.

    python deploy/grafana/dashboard.py > deploy/grafana/payrouter.json

The JSON is committed (import it in Grafana: Dashboards > New > Import) and
`tests/ops/test_dashboard.py` checks it equals what this file generates; every query is run
against a real Prometheus scraping real routers by `tests/ops/test_prometheus.py`. Plain
dictionaries rather than a dashboard library: the schema used is small and stable, and the
file is read by the tests without another dependency.

Variables: `instance` (routers) and `account` (channel accounts), both multi-value with
"All"; every query filters on them where the series carry the label.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

RATE = "$__rate_interval"
INSTANCE = 'instance=~"$instance"'
ACCOUNT = 'account=~"$account"'
CREATE = 'method="POST",route="/v1/payments"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Target:
    """One query of a panel and its legend."""

    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """A panel: its title, what it shows (`description`), its queries and its unit."""

    title: str
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 8


def _quantiles(metric: str, selector: str, by: str = "") -> tuple[Target, ...]:
    group = f"{by}, le" if by else "le"
    legend = f"{{{{{by}}}}} " if by else ""
    return tuple(
        Target(
            f"histogram_quantile({q}, sum by ({group}) "
            f"(rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"{legend}p{int(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    )


ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    (
        "Traffic and SLOs",
        (
            Panel(
                "Create availability",
                "Share of POST /v1/payments not answered 5xx (SLO 99.9%; 402 declines count as "
                "answered).",
                (
                    Target(
                        f'1 - (sum(rate(payrouter_http_requests_total{{{CREATE},status=~"5..",'
                        f"{INSTANCE}}}[{RATE}])) or vector(0)) / sum(rate("
                        f"payrouter_http_requests_total{{{CREATE},{INSTANCE}}}[{RATE}]))",
                        "availability",
                    ),
                ),
                unit="percentunit",
                kind="stat",
                width=6,
            ),
            Panel(
                "Requests by status",
                "Every HTTP request served, per second, by status code.",
                (
                    Target(
                        "sum by (status) (rate(payrouter_http_requests_total"
                        f"{{{INSTANCE}}}[{RATE}]))",
                        "{{status}}",
                    ),
                ),
                unit="reqps",
                width=9,
            ),
            Panel(
                "Payments routed by wallet",
                "Payments a channel account took, per second, by the account's wallet.",
                (
                    Target(
                        "sum by (wallet) (rate(payrouter_routing_decisions_total{"
                        f"{INSTANCE}}}[{RATE}]) * on (account) group_left (wallet) "
                        "max by (account, wallet) (payrouter_channel_account_info))",
                        "{{wallet}}",
                    ),
                ),
                unit="reqps",
                width=9,
            ),
            Panel(
                "Create latency",
                "Time to answer POST /v1/payments (SLO: 99% within 1 s).",
                _quantiles("payrouter_http_request_duration_seconds", f"{CREATE},{INSTANCE}"),
                unit="s",
                width=12,
            ),
            Panel(
                "Payment status changes",
                "Payments entering each status, per second.",
                (
                    Target(
                        "sum by (status) (rate(payrouter_payment_status_changes_total{"
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{status}}",
                    ),
                ),
                unit="reqps",
                width=12,
            ),
        ),
    ),
    (
        "Channels",
        (
            Panel(
                "Channel success rate",
                "Share of create calls each account answered ok.",
                (
                    Target(
                        'sum by (account) (rate(payrouter_channel_calls_total{operation="create",'
                        f'outcome="ok",{ACCOUNT},{INSTANCE}}}[{RATE}])) / sum by (account) '
                        f'(rate(payrouter_channel_calls_total{{operation="create",{ACCOUNT},'
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{account}}",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "Channel calls by outcome",
                "Calls to channel accounts per second, by account and outcome.",
                (
                    Target(
                        "sum by (account, outcome) (rate(payrouter_channel_calls_total{"
                        f"{ACCOUNT},{INSTANCE}}}[{RATE}]))",
                        "{{account}} {{outcome}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Channel latency",
                "Channel call duration quantiles per account (all operations).",
                _quantiles(
                    "payrouter_channel_call_duration_seconds", f"{ACCOUNT},{INSTANCE}", "account"
                ),
                unit="s",
            ),
            Panel(
                "Breaker state",
                "Per account: 0 closed, 1 half-open, 2 open (forced included). Shared by all "
                "routers.",
                (
                    Target(
                        f"max by (account) (payrouter_channel_breaker_state{{{ACCOUNT}}})",
                        "{{account}}",
                    ),
                ),
            ),
            Panel(
                "Health score",
                "0..1 per account: smoothed success rate, lowered by slowness.",
                (
                    Target(
                        f"max by (account) (payrouter_channel_health_score{{{ACCOUNT}}})",
                        "{{account}}",
                    ),
                ),
            ),
            Panel(
                "Failovers",
                "Payments moved on from an account to the next, per second, by why.",
                (
                    Target(
                        "sum by (from_account, reason) (rate(payrouter_failovers_total{"
                        f'from_account=~"$account",{INSTANCE}}}[{RATE}]))',
                        "{{from_account}} {{reason}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Channel notifications",
                "Channel callbacks per second, by account and outcome (accepted or why refused).",
                (
                    Target(
                        "sum by (account, outcome) (rate(payrouter_channel_notifications_total{"
                        f"{ACCOUNT},{INSTANCE}}}[{RATE}]))",
                        "{{account}} {{outcome}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Conflicting channel reports",
                "Channel reports that contradict a payment or refund (need review), last hour.",
                (
                    Target(
                        "sum by (account) (increase(payrouter_payment_conflicts_total{"
                        f"{ACCOUNT},{INSTANCE}}}[1h]))",
                        "{{account}}",
                    ),
                ),
            ),
            Panel(
                "Re-query worker",
                "Payments the re-query worker looked at, per second, by what it found.",
                (
                    Target(
                        "sum by (outcome) (rate(payrouter_requery_checks_total{"
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{outcome}}",
                    ),
                ),
                unit="reqps",
            ),
        ),
    ),
    (
        "Webhooks",
        (
            Panel(
                "Webhook deliveries by outcome",
                "Delivery attempts to merchants' endpoints, per second.",
                (
                    Target(
                        "sum by (outcome) (rate(payrouter_webhook_deliveries_total{"
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{outcome}}",
                    ),
                ),
                unit="reqps",
                width=6,
            ),
            Panel(
                "Webhook backlog",
                "Events waiting for a first attempt (outbox) and how overdue the oldest retry "
                "is. Shared by all routers.",
                (
                    Target("max(payrouter_webhook_outbox_entries)", "outbox entries"),
                    Target("max(payrouter_webhook_queue_lag_seconds)", "retry lag (s)"),
                ),
                width=6,
            ),
            Panel(
                "Webhook dead letters",
                "Events that became dead letters, last hour.",
                (
                    Target(
                        f"sum(increase(payrouter_webhook_dead_letters_total{{{INSTANCE}}}[1h]))",
                        "dead letters",
                    ),
                ),
                kind="stat",
                width=6,
            ),
            Panel(
                "Webhook latency",
                "Time merchants' endpoints took to answer.",
                _quantiles("payrouter_webhook_delivery_duration_seconds", INSTANCE),
                unit="s",
                width=6,
            ),
        ),
    ),
    (
        "Record",
        (
            Panel(
                "Record lag",
                "Age of the oldest change not yet copied to PostgreSQL (0: none waiting). Shared "
                "by all routers; alerts at 30 s.",
                (Target(f"max(payrouter_record_lag_seconds{{{INSTANCE}}})", "lag"),),
                unit="s",
                width=6,
            ),
            Panel(
                "Drained to the record",
                "Rows the drainers wrote to the record, per second, by kind.",
                (
                    Target(
                        "sum by (kind) (rate(payrouter_record_drained_total{"
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{kind}}",
                    ),
                ),
                unit="ops",
                width=6,
            ),
            Panel(
                "Record errors",
                "Drained batches the database refused or could not take (retried), and creates "
                "made without checking their merchant_order_id against the record, per second.",
                (
                    Target(
                        "sum by (instance) (rate(payrouter_record_drain_errors_total{"
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{instance}} drain errors",
                    ),
                    Target(
                        "sum by (instance) (rate(payrouter_record_unchecked_orders_total{"
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{instance}} unchecked creates",
                    ),
                ),
                unit="ops",
                width=6,
            ),
            Panel(
                "Retired from Redis",
                "Final, recorded objects removed from Redis after the retention, per second, by "
                "kind.",
                (
                    Target(
                        "sum by (kind) (rate(payrouter_record_retired_total{"
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{kind}}",
                    ),
                ),
                unit="ops",
                width=6,
            ),
        ),
    ),
    (
        "Risk and rate limits",
        (
            Panel(
                "Risk decisions",
                "Creates judged by the risk rules, per second, by decision.",
                (
                    Target(
                        "sum by (decision) (rate(payrouter_risk_decisions_total{"
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{decision}}",
                    ),
                ),
                unit="reqps",
                width=6,
            ),
            Panel(
                "Top risk rules hit",
                "The ten rules that fired most in the last hour, with their action.",
                (
                    Target(
                        "topk(10, sum by (rule, action) (increase(payrouter_risk_rule_hits_total{"
                        f"{INSTANCE}}}[1h])))",
                        "{{rule}} {{action}}",
                    ),
                ),
                kind="table",
                width=6,
            ),
            Panel(
                "Risk rule errors",
                "Rules that failed on a request (taken as not fired), last hour.",
                (
                    Target(
                        "sum by (rule) (increase(payrouter_risk_rule_errors_total{"
                        f"{INSTANCE}}}[1h]))",
                        "{{rule}}",
                    ),
                ),
                width=6,
            ),
            Panel(
                "429s by kind",
                "Merchant requests refused by the rate limits, per second, by budget.",
                (
                    Target(
                        f"sum by (kind) (rate(payrouter_rate_limited_total{{{INSTANCE}}}[{RATE}]))",
                        "{{kind}}",
                    ),
                ),
                unit="reqps",
                width=6,
            ),
            Panel(
                "Risk file reloads",
                "Risk file reloads per router: applied, unchanged or refused.",
                (
                    Target(
                        "sum by (instance, outcome) (increase("
                        f"payrouter_risk_config_reloads_total{{{INSTANCE}}}[{RATE}]))",
                        "{{instance}} {{outcome}}",
                    ),
                ),
                width=12,
            ),
            Panel(
                "Risk file version",
                "The risk file version each router runs (`off`: none; all should agree).",
                (
                    Target(
                        f"payrouter_risk_config_info{{{INSTANCE}}}",
                        "{{instance}} {{version}}",
                    ),
                ),
                kind="table",
                width=12,
            ),
        ),
    ),
    (
        "Process and store",
        (
            Panel(
                "Routers up",
                "1 when Prometheus could scrape the router.",
                (Target(f'up{{job="payrouter",{INSTANCE}}}', "{{instance}}"),),
                width=6,
            ),
            Panel(
                "Store reachable",
                "1 when the router could read its Redis store at the last scrape.",
                (Target(f"min by (instance) (payrouter_store_up{{{INSTANCE}}})", "{{instance}}"),),
                width=6,
            ),
            Panel(
                "CPU",
                "CPU seconds per second, per router process.",
                (
                    Target(
                        f'rate(process_cpu_seconds_total{{job="payrouter",{INSTANCE}}}[{RATE}])',
                        "{{instance}}",
                    ),
                ),
                unit="percentunit",
                width=6,
            ),
            Panel(
                "Memory",
                "Resident memory per router process.",
                (
                    Target(
                        f'process_resident_memory_bytes{{job="payrouter",{INSTANCE}}}',
                        "{{instance}}",
                    ),
                ),
                unit="bytes",
                width=6,
            ),
            Panel(
                "Config reloads",
                "Routing file reloads per router: applied, unchanged or refused.",
                (
                    Target(
                        "sum by (instance, outcome) (increase(payrouter_config_reloads_total{"
                        f"{INSTANCE}}}[{RATE}]))",
                        "{{instance}} {{outcome}}",
                    ),
                ),
                width=12,
            ),
            Panel(
                "Config version",
                "The routing file version each router runs (all should agree).",
                (Target(f"payrouter_config_info{{{INSTANCE}}}", "{{instance}} {{version}}"),),
                kind="table",
                width=12,
            ),
        ),
    ),
    (
        "Reconciliation",
        (
            Panel(
                "Discrepancies to review",
                "Lines of each account's last successful reconciliation that need a person, "
                "by kind (docs/reconciliation.md). Alerts above 0.",
                (
                    Target(
                        f"max by (account, kind) (payrouter_recon_discrepancies{{{ACCOUNT}}})",
                        "{{account}} {{kind}}",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Since the last reconciliation",
                "Time since each account's last successful reconciliation. Alerts past 30 h.",
                (
                    Target(
                        "time() - max by (account) "
                        f"(payrouter_recon_last_success_timestamp_seconds{{{ACCOUNT}}})",
                        "{{account}}",
                    ),
                ),
                unit="s",
                width=8,
            ),
            Panel(
                "Reconciled lines",
                "Statement lines reconciled in the window, by account and result.",
                (
                    Target(
                        "sum by (account, result) (increase(payrouter_recon_lines_total{"
                        f"{INSTANCE},{ACCOUNT}}}[1d]))",
                        "{{account}} {{result}}",
                    ),
                ),
                width=8,
            ),
        ),
    ),
)
"""The dashboard's rows and their panels, top to bottom."""


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
            }
            for i, target in enumerate(panel.targets)
        ],
    }


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    panels: list[dict[str, Any]] = []
    y = 0
    for title, row in ROWS:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x = 0
        for panel in row:
            if x + panel.width > 24:
                x, y = 0, y + 8
            panels.append(_panel(panel, len(panels) + 1, x, y))
            x += panel.width
        y += 8
    return {
        "uid": "payrouter",
        "title": "payrouter",
        "description": "Generated by deploy/grafana/dashboard.py; runbook: docs/operations.md.",
        "tags": ["payrouter"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                },
                _variable("instance", "Router", 'label_values(up{job="payrouter"}, instance)'),
                _variable(
                    "account",
                    "Channel account",
                    "label_values(payrouter_channel_account_info, account)",
                ),
            ]
        },
        "panels": panels,
    }


def render() -> str:
    """The committed file's text."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
