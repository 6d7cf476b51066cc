"""The dashboard generator (deploy/grafana/dashboard.py, a script outside the packages), loaded
for the tests."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType
from typing import Any

from tests.ops.promtool import DEPLOY

COMMITTED = DEPLOY / "grafana" / "payrouter.json"
VARIABLES = {"$__rate_interval": "5s", "$instance": ".*", "$account": ".*"}
"""What Grafana puts in the queries' variables, as the tests fill them in (every router and
account; a rate window several scrape intervals wide)."""


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "payrouter_dashboard", DEPLOY / "grafana" / "dashboard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def queries(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Every panel's queries by panel title, variables filled in as `VARIABLES` says."""
    out: dict[str, list[str]] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {expr}"
            out.setdefault(panel["title"], []).append(expr)
    return out


def metric_names(expr: str) -> set[str]:
    """The series names a query reads (the router's and Prometheus's `up`)."""
    return set(re.findall(r"\b((?:payrouter|process)_[a-z_]+|up)\{", expr)) | set(
        re.findall(r"\b(payrouter_[a-z_]+)\)", expr)
    )
