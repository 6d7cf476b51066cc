"""`payrouter risk check|explain` and a broken risk file at start-up, as real processes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.router.test_cli import good_routing, one_line_exit_2, payrouter

__all__ = ["good_routing"]
ROOT = Path(__file__).resolve().parents[2]
BROKEN = """\
version: 1
rate_limits:
  tiers:
    default:
      merchant:
        create: {per_second: 0, burst: 5}
rules:
  - {name: a, action: block, when: 'amount >'}
  - {name: b, action: flag, when: 'ip_payers_2h > 1'}
"""


def test_check_accepts_the_shipped_file_and_names_every_problem(tmp_path: Path) -> None:
    ok = payrouter("risk", "check", "config/risk.yaml", "--json")
    assert ok.returncode == 0, ok.stderr
    assert "card-testing-payers-per-ip" in json.loads(ok.stdout)["rules"]

    path = tmp_path / "risk.yaml"
    path.write_text(BROKEN)
    bad = payrouter("risk", "check", str(path))
    assert bad.returncode == 1
    lines = bad.stderr.splitlines()
    assert lines[0].startswith(f"{path}:6: rate_limits.tiers.default.merchant.create.per_second")
    assert len(lines) == 1  # schema errors first: rules are compiled once the file validates
    path.write_text(BROKEN.replace("per_second: 0", "per_second: 1"))
    bad = payrouter("risk", "check", str(path), "--json")
    problems = json.loads(bad.stdout)["problems"]
    assert [p.split(": ", 2)[:2] for p in problems] == [
        [f"{path}:8", "rules.0.when"],
        [f"{path}:9", "rules.1.when"],
    ]


def test_serve_refuses_a_broken_risk_file_in_one_line(tmp_path: Path, good_routing: Path) -> None:
    path = tmp_path / "risk.yaml"
    path.write_text(BROKEN.replace("per_second: 0", "per_second: 1"))
    result = payrouter(
        "serve", env={"PAYROUTER_ROUTING": str(good_routing), "PAYROUTER_RISK": str(path)}
    )
    one_line_exit_2(result, f"{path}:8: rules.0.when", "payrouter risk check")


def test_explain_a_described_request(redis_url: str) -> None:
    result = payrouter(
        "risk",
        "explain",
        "--ip",
        "198.51.100.7",
        "--payer",
        "p1",
        "--amount",
        "600000",
        "--method",
        "barcode",
        "--json",
        env={"PAYROUTER_REDIS_URL": redis_url, "PAYROUTER_RISK": str(ROOT / "config/risk.yaml")},
    )
    assert result.returncode == 0, result.stderr
    now = json.loads(result.stdout)["now"]
    assert (now["decision"], now["fired"]) == ("block", ["ceiling-barcode"])
    rules = {r["name"]: r for r in now["rules"]}
    assert rules["card-testing-payers-per-ip"]["features"] == {"ip_payers_1h": 0}
