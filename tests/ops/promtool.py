"""Running Debian's `promtool` and reading the shipped rule files, for the operations tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
RUNBOOK = ROOT / "docs" / "operations.md"


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """`promtool args...`, its output captured; fails the test when promtool is missing."""
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: run scripts/setup (Debian's prometheus package)"
    return subprocess.run(  # noqa: S603 - our own arguments
        [exe, *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def rules() -> list[dict[str, Any]]:
    """Every rule of deploy/prometheus/alerts.yml, recording and alerting."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alerts() -> dict[str, dict[str, Any]]:
    """The alerting rules of deploy/prometheus/alerts.yml by name."""
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}
