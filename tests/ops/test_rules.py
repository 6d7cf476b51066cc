"""The shipped Prometheus rules: valid, unit-tested both ways, and each with its runbook."""

from __future__ import annotations

import re

import yaml

from tests.ops.promtool import ALERTS, ALERTS_TEST, DEPLOY, RUNBOOK, alerts, promtool


def test_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_shipped_prometheus_config_is_valid_and_loads_the_rules() -> None:
    done = promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert "1 rule files found" in done.stdout.decode()


def test_rule_unit_tests_pass() -> None:
    done = promtool("test", "rules", str(ALERTS_TEST))
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    cases = [
        case
        for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for name in alerts():
        own = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in own), f"{name} is never tested firing"
        assert any(not case["exp_alerts"] for case in own), f"{name} is never tested silent"


def test_every_alert_has_severity_and_a_runbook_section() -> None:
    text = RUNBOOK.read_text()
    headings = set(re.findall(r"^### (\w+)$", text, flags=re.MULTILINE))
    for name, rule in alerts().items():
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert name in headings, f"docs/operations.md has no '### {name}' section"
        section = text.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        for part in ("Means", "Look at", "Do"):
            assert f"**{part}**" in section, f"{name}'s runbook section lacks **{part}**"
    assert headings >= set(alerts())


def test_burn_rate_alerts_keep_realistic_for_durations() -> None:
    # The shipped durations are for production; the end-to-end test shortens a copy.
    for name, rule in alerts().items():
        duration = rule.get("for", "0s")
        assert duration == "0s" or duration.endswith(("m", "h")), (name, duration)
