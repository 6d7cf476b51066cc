"""`payrouter risk check|explain`: what operators run before and after editing risk.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from router.cli.common import emit, load_settings, run_async
from router.clock import Clock, from_ms
from router.metrics import Metrics
from router.risk.config import RiskError, load_risk
from router.risk.control import RiskControl
from router.risk.explain import explain, request_of
from router.risk.rules import RiskRequest
from router.settings import ConfigurationError
from router.store import open_store


@click.group()
def risk() -> None:
    """Check risk files and explain risk decisions."""


@risk.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def risk_check(file: Path, as_json: bool) -> None:
    """Validate a risk file: schema, tiers, and every rule compiled and tried on sample
    values; exits 1 with every problem found."""
    try:
        config = load_risk(file)
    except RiskError as exc:
        if as_json:
            emit({"valid": False, "problems": exc.problems}, True, "")
        else:
            click.echo("\n".join(exc.problems), err=True)
        raise SystemExit(1) from None
    rules = [r.name for r in config.rules]
    tiers = list(config.file.rate_limits.tiers)
    emit(
        {"valid": True, "version": config.digest, "tiers": tiers, "rules": rules},
        as_json,
        f"{file}: valid (version {config.digest}; tiers: {', '.join(tiers)}; "
        f"rules: {', '.join(rules) or 'none'})",
    )


@risk.command("explain")
@click.argument("payment_id", required=False)
@click.option("--merchant", default="mch_explain", show_default=True)
@click.option("--amount", type=int, default=100, show_default=True, help="Minor units.")
@click.option("--currency", default="CNY", show_default=True)
@click.option("--method", default="qr", show_default=True)
@click.option("--ip", default=None, help="The buyer's IP address.")
@click.option("--payer", default=None, help="The payer id.")
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path),
    default=None,
    help="Risk file (default: PAYROUTER_RISK or config/risk.yaml).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def risk_explain(
    payment_id: str | None,
    merchant: str,
    amount: int,
    currency: str,
    method: str,
    ip: str | None,
    payer: str | None,
    path: Path | None,
    as_json: bool,
) -> None:
    """Why PAYMENT_ID was allowed, flagged or blocked: its stored decision, and each rule in
    force on the counters as they are now in PAYROUTER_REDIS_URL. Without PAYMENT_ID, the
    same for a described request (--amount, --ip, --payer...). Counts nothing."""
    settings = load_settings()
    risk_path = path or settings.risk_path
    if risk_path is None:
        raise ConfigurationError("no risk file: set PAYROUTER_RISK or pass --file")

    async def run() -> dict[str, Any]:
        clock = Clock()
        store = await open_store(settings.redis_url, clock, settings.secret_key)
        try:
            control = RiskControl(store.risk, clock, Metrics(), risk_path)
            await control.refresh_lists()
            if payment_id is None:
                req = RiskRequest(
                    merchant,
                    amount,
                    currency,
                    method,
                    None,
                    None,
                    False,
                    {},
                    ip,
                    payer,
                    from_ms(clock.now_ms()),
                )
                return {"payment": None, "decided": None, "now": await explain(control, req)}
            stored = await store.payments.find(payment_id)
            if stored is None:
                raise click.ClickException(f"no such payment: {payment_id}")
            p = stored.payment
            req = request_of(
                p, stored.merchant_id, stored.created_ms, stored.client_ip, stored.payer_id
            )
            decided = None if p.risk is None else p.risk.model_dump()
            return {"payment": p.id, "decided": decided, "now": await explain(control, req)}
        finally:
            await store.close()

    result = run_async(run)
    emit(result, as_json, _text(result))


def _text(result: dict[str, Any]) -> str:
    lines = []
    decided = result["decided"]
    if result["payment"] is not None:
        what = "no decision (made before risk control)"
        if decided is not None:
            what = f"{decided['decision']} ({', '.join(decided['rules']) or 'no rule fired'})"
        lines.append(f"{result['payment']}: decided {what}")
    now = result["now"]
    lines.append(
        f"now (risk config {now['config_version']}): {now['decision']}"
        + (f": {now['reason']}" if now["reason"] else "")
    )
    for rule in now["rules"]:
        mark = "FIRES" if rule["fires"] else ("error" if rule["error"] else "-")
        features = " ".join(f"{k}={v}" for k, v in rule["features"].items())
        lines.append(f"  {mark:<6} {rule['name']:<36} {rule['action']:<6} {features}")
    if now["lists"]:
        lines.append(f"on lists: {', '.join(now['lists'])}")
    return "\n".join(lines)
