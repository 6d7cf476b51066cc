"""The committed Grafana dashboard is the generator's output and reads only real series (each
query is run against a real Prometheus in `test_prometheus.py`)."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Router, Simulator
from tests.ops.conftest import scrape
from tests.ops.dashboard import COMMITTED, generator, metric_names, queries
from tests.ops.test_metrics import traffic


def test_committed_dashboard_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == generator().render(), (
        "regenerate: python deploy/grafana/dashboard.py > deploy/grafana/payrouter.json"
    )


def test_dashboard_has_the_variables_and_every_panel_a_query() -> None:
    dashboard = json.loads(COMMITTED.read_text())
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"instance", "account", "datasource"} <= names
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) == len(queries(dashboard)) >= 20
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


async def test_every_series_a_panel_reads_is_exported(router: Router, simulator: Simulator) -> None:
    await traffic(router, simulator)
    # Families, not samples: a labelled counter nobody has counted yet is declared all the
    # same (`# TYPE`), and Prometheus knows its name once it is.
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "info": ("_info",),
    }
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(await scrape(router))
        for suffix in suffixes.get(family.type, ("",))
    }
    for title, exprs in queries(json.loads(COMMITTED.read_text())).items():
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"{title}: no series found in {expr}"
            names -= {"up"}  # Prometheus's own, per target
            assert names <= exported, f"{title} reads {names - exported}, not exported"
