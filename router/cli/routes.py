"""`payrouter routes check|explain`: what operators run before and after editing routing.yaml."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import click
from pydantic import ValidationError

from channels.base import METHODS, WALLETS
from router.api.admin import ExplainQuery, explain_request
from router.api.middleware import validation_error
from router.cli.common import emit, load_settings, not_blank, run_async
from router.clock import Clock
from router.errors import ApiError
from router.routing.config import ConfigError, credential_problems, load_config
from router.runtime import RoutingTable, Runtime
from router.store import open_store


@click.group()
def routes() -> None:
    """Check routing files and explain routing decisions."""


@routes.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def routes_check(file: Path, as_json: bool) -> None:
    """Validate a routing file and the credentials it names; exits 1 with every problem found.

    Credentials are checked as `payrouter serve` would load them now: a file that does not
    exist yet, or a variable not set in this shell, is a problem.
    """
    try:
        loaded = load_config(file)
        problems = credential_problems(loaded)
    except ConfigError as exc:
        problems = exc.problems + exc.credential_problems
    if problems:
        if as_json:
            click.echo(json.dumps({"valid": False, "problems": problems}, indent=2))
        else:
            click.echo("\n".join(problems), err=True)
        raise SystemExit(1)
    accounts = list(loaded.config.accounts)
    rules = [r.name for r in loaded.config.rules]
    emit(
        {"valid": True, "version": loaded.digest, "accounts": accounts, "rules": rules},
        as_json,
        f"{file}: valid (version {loaded.digest}; accounts: {', '.join(accounts)}; "
        f"rules: {', '.join(rules) or 'none'})",
    )


def _pairs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        if "=" not in item or not item.split("=", 1)[0]:
            raise click.BadParameter(f"{item!r}: use key=value")
    return value


@routes.command("explain")
@click.option("--method", type=click.Choice(METHODS), required=True)
@click.option("--amount", type=int, default=100, show_default=True, help="Minor units.")
@click.option("--currency", default="CNY", show_default=True)
@click.option("--wallet", type=click.Choice(WALLETS), default=None)
@click.option("--channel", default=None, callback=not_blank, help="A pinned channel account.")
@click.option("--merchant", default="mch_explain", show_default=True, callback=not_blank)
@click.option("--metadata", multiple=True, callback=_pairs, help="key=value, repeatable.")
@click.option("--at", "moment", default=None, help="RFC 3339 time (default: now).")
@click.option(
    "--payment-id",
    default="pay_explain",
    show_default=True,
    callback=not_blank,
    help="Weighted and exploration choices depend on it.",
)
@click.option("--live", is_flag=True, help="Route as a live-mode payment.")
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path),
    default=None,
    help="Routing file (default: PAYROUTER_ROUTING or config/routing.yaml).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def routes_explain(
    method: str,
    amount: int,
    currency: str,
    wallet: str | None,
    channel: str | None,
    merchant: str,
    metadata: tuple[str, ...],
    moment: str | None,
    payment_id: str,
    live: bool,
    path: Path | None,
    as_json: bool,
) -> None:
    """How the router would route a described payment: rule, candidates, scores, pick.

    Breaker states and scores come from the Redis in PAYROUTER_REDIS_URL, the state every
    router process shares; without it every account looks fresh and closed.
    """
    settings = load_settings()
    if path is not None:
        settings = replace(settings, routing_path=path)
    pairs = dict(item.split("=", 1) for item in metadata)
    raw = {
        "method": method,
        "amount": amount,
        "currency": currency,
        "wallet": wallet,
        "channel": channel,
        "merchant": merchant,
        "metadata": pairs,
        "at": moment,
        "payment_id": payment_id,
        "livemode": live,
    }
    try:
        query = ExplainQuery.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(validation_error(exc).message) from None

    async def run() -> dict[str, Any]:
        clock = Clock()
        async with aiohttp.ClientSession() as session:
            table = RoutingTable.load(settings.routing_path, session, clock)
            store = await open_store(settings.redis_url, clock, settings.secret_key)
            rt = Runtime(settings, clock, store, table, session)
            try:
                return await explain_request(rt, query)
            except ApiError as exc:
                raise click.ClickException(exc.message) from None
            finally:
                await store.close()

    result = run_async(run)
    lines = [f"rule {result['rule']} ({result['strategy']}), config {result['config_version']}"]
    for row in result["considered"]:
        state = row["breaker"] or "-"
        score = "-" if row["score"] is None else f"{row['score']:.3f}"
        why = f"  excluded: {row['excluded']}" if row["excluded"] else ""
        lines.append(f"  {row['account']:<20} breaker {state:<13} score {score}{why}")
        if "terms" in row:
            lines.append("      " + _terms_line(row["terms"]))
    lines.append(f"pick: {result['pick']}   order: {', '.join(result['order'])}")
    if result.get("last_resort"):
        lines.append(f"last resort (breaker open): {', '.join(result['last_resort'])}")
    if result.get("hedge"):
        hedge = result["hedge"]
        lines.append(f"hedge: after {hedge['delay_ms']} ms also to {hedge['to']}")
    emit(result, as_json, "\n".join(lines))


def _terms_line(terms: dict[str, Any]) -> str:
    """The `adaptive` strategy's terms of one account, on one line."""
    p95 = "-" if terms["p95_ms"] is None else f"{terms['p95_ms']:.0f} ms"
    p99 = "-" if terms.get("p99_ms") is None else f"{terms['p99_ms']:.0f} ms"
    return (
        f"{terms['role']}: utility {terms['utility']:.4f} = success {terms['success']:.4f}"
        f" x latency {terms['latency']:.2f} (p95 {p95}, p99 {p99}) - fee {terms['fee_cost']:.4f}"
        f" ({terms['fee_pct']:g}%); {terms['calls']:.1f} recent calls, draw {terms['draw']:.4f}"
        + (", outlier" if terms["outlier"] else "")
    )
