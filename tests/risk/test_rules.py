"""The risk file's checks and the rules' decisions, as a table (pure: no Redis)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from router.risk.config import RiskError, load_risk
from router.risk.rules import RiskRequest, activation, evaluate

ROOT = Path(__file__).resolve().parents[2]
HEADER = "version: 1\nvelocity:\n  windows: [10m, 1h, 24h]\nrules:\n"


def write(tmp_path: Path, rules: str) -> Path:
    path = tmp_path / "risk.yaml"
    path.write_text(HEADER + rules)
    return path


def test_the_shipped_file_loads() -> None:
    config = load_risk(ROOT / "config" / "risk.yaml")
    assert config.tier_of("mch_anyone").merchant.create is not None
    assert {f.name for f in config.features} >= {"ip_payers_1h", "payer_failed_24h"}


@pytest.mark.parametrize(
    ("rule", "line", "fragment"),
    [
        ("  - {name: a, action: block, when: 'amount >'}\n", 5, "rules.0.when: Failed to parse"),
        ("  - {name: a, action: block, when: 'amount > \"1\"'}\n", 5, "No such overload"),
        ("  - {name: a, action: block, when: 'ip_payers_2h > 1'}\n", 5, "velocity windows"),
        ("  - {name: a, action: block, when: 'payer_payers_1h > 1'}\n", 5, "payer keeps"),
        ("  - {name: a, action: block, when: 'colour == 1'}\n", 5, "no such name 'colour'"),
        ("  - {name: a, action: block, when: 'amount'}\n", 5, "true or false"),
        ("  - {name: a, action: limit, when: 'true'}\n", 5, "max_amount goes with"),
        (
            "  - {name: a, action: flag, when: 'true'}\n"
            "  - {name: a, action: flag, when: 'true'}\n",
            6,
            "used twice",
        ),
    ],
)
def test_a_broken_rule_is_refused_naming_file_and_line(
    tmp_path: Path, rule: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, rule)
    with pytest.raises(RiskError) as caught:
        load_risk(path)
    assert caught.value.problems[0].startswith(f"{path}:{line}: "), caught.value.problems
    assert fragment in caught.value.problems[0]


def test_an_unknown_tier_and_a_bad_window_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "risk.yaml"
    path.write_text(
        "version: 1\nrate_limits:\n  merchants:\n    mch_x: gold\nvelocity:\n  windows: [5x]\n"
    )
    with pytest.raises(RiskError) as caught:
        load_risk(path)
    assert caught.value.problems == [
        f"{path}:4: rate_limits.merchants.mch_x: no tier named 'gold'",
        f"{path}:6: velocity.windows: Value error, '5x': a window is a duration such as 10m, "
        "1h or 24h",
    ]


RULES = """\
  - {name: ceiling, action: limit, max_amount: 5000, when: 'method == "barcode"'}
  - {name: testing, action: block, when: 'ip_payers_1h > 5'}
  - {name: busy, action: flag, when: 'payer_count_1h > 10'}
  - {name: listed, action: block, when: '"blocked" in lists'}
  - {name: night, action: flag, when: 'hour < 6 && amount >= 100000'}
  - {name: vip, action: flag, when: 'metadata.tier == "vip"'}
  - {name: subnet, action: flag, when: 'network == "198.51.100.0/24"'}
"""
NOON = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
NIGHT = datetime(2026, 1, 5, 19, 0, tzinfo=UTC)  # 03:00 in Shanghai


def request(**fields: Any) -> RiskRequest:
    base: dict[str, Any] = {
        "merchant": "mch_a",
        "amount": 1000,
        "currency": "CNY",
        "method": "qr",
        "wallet": None,
        "channel": None,
        "livemode": False,
        "metadata": {},
        "ip": "203.0.113.9",
        "payer": "p1",
        "now": NOON,
    }
    return RiskRequest(**(base | fields))


@pytest.mark.parametrize(
    ("req", "features", "lists", "decision", "fired"),
    [
        (request(), {}, [], "allow", ()),
        (request(method="barcode", amount=5000), {}, [], "allow", ()),
        (request(method="barcode", amount=5001), {}, [], "block", ("ceiling",)),
        (request(), {"ip_payers_1h": 5}, [], "allow", ()),
        (request(), {"ip_payers_1h": 6}, [], "block", ("testing",)),
        (request(), {"payer_count_1h": 11}, [], "flag", ("busy",)),
        (request(), {"payer_count_1h": 11, "ip_payers_1h": 9}, [], "block", ("testing", "busy")),
        (request(), {}, ["blocked"], "block", ("listed",)),
        (request(), {}, ["other"], "allow", ()),
        (request(amount=100000), {}, [], "allow", ()),
        (request(amount=100000, now=NIGHT), {}, [], "flag", ("night",)),
        (request(metadata={"tier": "vip"}), {}, [], "flag", ("vip",)),
        (request(ip="198.51.100.77"), {}, [], "flag", ("subnet",)),
        (request(ip=None), {}, [], "allow", ()),
    ],
)
def test_rules_table(
    tmp_path: Path,
    req: RiskRequest,
    features: dict[str, int],
    lists: list[str],
    decision: str,
    fired: tuple[str, ...],
) -> None:
    config = load_risk(write(tmp_path, RULES))
    values = {"ip_payers_1h": 0, "payer_count_1h": 0} | features
    verdict = evaluate(
        config.rules, activation(req, values, lists, ZoneInfo(config.file.timezone)), req.amount
    )
    assert (verdict.decision, verdict.fired) == (decision, fired)
    # `metadata.tier` on a payment without it fails at run time: not fired, and reported.
    assert verdict.errors == (() if req.metadata else ("vip",))
    if decision == "block":
        assert verdict.reason is not None and fired[0] in verdict.reason
