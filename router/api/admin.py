"""The operators' API, `/admin/...`, behind `Authorization: Bearer $PAYROUTER_ADMIN_TOKEN`.

    GET  /admin/channels                       health, breaker and override per account
    PUT  /admin/channels/{account}/override    {"forced": "open" | "closed" | null}
    GET  /admin/routing                        the routing config in force, last reload
    POST /admin/routing/reload                 reload config/routing.yaml now
    GET  /admin/routing/explain?method=&...    how a described payment would be routed
    GET  /admin/webhooks/dead                  every merchant's dead-letter events (records
                                               that cannot be read are left out, reported)
    POST /admin/webhooks/{merchant}/{id}/resend   deliver one again, on a fresh schedule
    GET  /admin/merchants/{merchant}/webhook-endpoints/disabled   endpoints that answered 410
    POST /admin/merchants/{merchant}/webhook-endpoints/{id}/enable   deliver to one again

Without `PAYROUTER_ADMIN_TOKEN` the admin API answers 403 to everything.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from channels.base import Method, Wallet
from router.api.errors import api_error
from router.api.events import (
    ENDPOINT_ID,
    WebhookEndpointList,
    enable_endpoint,
    endpoint_view,
    read_event,
    readable_attempts,
)
from router.api.middleware import RUNTIME, json_response, parse_body, validate
from router.domain_errors import DomainError
from router.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from router.routing.decide import decide
from router.routing.rules import RouteRequest
from router.runtime import Runtime

BREAKER_LEVEL = {"closed": 0, "forced_closed": 0, "half_open": 1, "open": 2, "forced_open": 2}


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid")

    forced: Literal["open", "closed"] | None


class ExplainQuery(BaseModel):
    """A payment described by its routing-relevant fields."""

    model_config = ConfigDict(extra="forbid")

    method: Method
    amount: Annotated[int, Field(ge=1)] = 100
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    wallet: Wallet | None = None
    channel: str | None = None
    merchant: str = "mch_explain"
    livemode: bool = False
    payment_id: str = "pay_explain"
    at: AwareDatetime | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


def authorize(request: web.Request) -> Runtime:
    """The runtime, once the request carries the admin token."""
    rt = request.app[RUNTIME]
    token = rt.settings.admin_token
    if not token:
        raise PermissionDenied(
            "admin_disabled", "The admin API is off: set PAYROUTER_ADMIN_TOKEN", param=None
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Undecodable header bytes arrive as surrogates; encoded as such they match no token.
    given_bytes = given.encode("utf-8", "surrogatepass")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given_bytes, token.encode()):
        raise AuthenticationFailed(
            "invalid_admin_token",
            "Authorization must be 'Bearer <admin token>'",
            param="Authorization",
        )
    return rt


async def channel_health(rt: Runtime) -> list[dict[str, Any]]:
    """Every account's shared state, also what the metrics gauges are set from."""
    names = list(rt.accounts)
    views = await rt.breakers.snapshot(names)
    out = []
    for name in names:
        view, caps = views[name], rt.accounts[name].channel.capabilities
        out.append(
            {
                "account": name,
                "wallet": caps.wallet,
                "methods": sorted(caps.methods),
                "livemode": rt.accounts[name].livemode,
                "breaker": view.state,
                "forced": view.forced,
                "open_until_ms": view.open_until_ms,
                "score": view.score,
                "window": {
                    "calls": view.calls,
                    "failures": view.failures,
                    "avg_latency_ms": view.avg_latency_ms,
                },
            }
        )
    return out


def set_gauges(rt: Runtime, rows: list[dict[str, Any]]) -> None:
    """Set the per-account gauges from `rows`, all of them: an account the routing file no
    longer has loses its series (bounded cardinality, `router.metrics`)."""
    gauges = rt.metrics
    for gauge in (gauges.health_score, gauges.breaker_state, gauges.window_calls):
        gauge.clear()
    gauges.account_info.clear()
    for row in rows:
        account = row["account"]
        rt.metrics.account_info.labels(account, row["wallet"]).set(1)
        rt.metrics.health_score.labels(account).set(row["score"])
        rt.metrics.breaker_state.labels(account).set(BREAKER_LEVEL.get(row["breaker"], 2))
        window = row["window"]
        rt.metrics.window_calls.labels(account, "ok").set(window["calls"] - window["failures"])
        rt.metrics.window_calls.labels(account, "fail").set(window["failures"])


async def set_webhook_gauges(rt: Runtime) -> None:
    events = rt.store.events
    oldest = await events.oldest_retry_ms()
    now = rt.clock.now_ms()
    rt.metrics.webhook_lag.set(max(0, now - oldest) / 1000 if oldest is not None else 0)
    rt.metrics.webhook_outbox.set(await events.pending_count())


async def list_dead_letters(request: web.Request) -> web.Response:
    rt = authorize(request)
    rows = []
    for mch in await rt.store.merchants.ids():
        for evt_id in await rt.store.events.dead(mch):
            event = await read_event(rt, mch, evt_id)
            if event is not None:
                stored = await rt.store.events.attempts(mch, evt_id)
                attempts = readable_attempts(rt, event, stored)
                rows.append(
                    {
                        "merchant": mch,
                        "id": evt_id,
                        "type": event.type,
                        "created_at": event.created_at,
                        "attempts": len(stored),
                        "last": attempts[-1].model_dump() if attempts else None,
                    }
                )
    return web.json_response({"data": rows})


async def resend_dead_letter(request: web.Request) -> web.Response:
    rt = authorize(request)
    mch, evt_id = request.match_info["merchant"], request.match_info["id"]
    event = await read_event(rt, mch, evt_id)
    if event is None:
        raise NotFound("event", evt_id)
    await rt.store.events.resend(event)
    return web.json_response({"id": evt_id, "merchant": mch, "state": "pending"})


async def _merchant(rt: Runtime, request: web.Request) -> str:
    mch = request.match_info["merchant"]
    if await rt.store.merchants.get(mch) is None:
        raise NotFound("merchant", mch, param="merchant")
    return mch


async def list_disabled_endpoints(request: web.Request) -> web.Response:
    rt = authorize(request)
    found = await rt.store.events.endpoints.list(await _merchant(rt, request))
    return json_response(WebhookEndpointList(data=[endpoint_view(e) for e in found]))


async def enable_disabled_endpoint(request: web.Request) -> web.Response:
    rt = authorize(request)
    mch = await _merchant(rt, request)
    endpoint_id = request.match_info["id"]
    if not ENDPOINT_ID.fullmatch(endpoint_id):
        raise NotFound("disabled webhook endpoint", endpoint_id)
    return json_response(await enable_endpoint(rt.store.events, mch, endpoint_id))


async def list_channels(request: web.Request) -> web.Response:
    rt = authorize(request)
    return web.json_response({"data": await channel_health(rt)})


async def override(request: web.Request) -> web.Response:
    rt = authorize(request)
    account = request.match_info["account"]
    if account not in rt.accounts:
        raise NotFound("channel account", account, param="account")
    body = await parse_body(request, Override)
    await rt.breakers.force(account, body.forced)
    rows = [r for r in await channel_health(rt) if r["account"] == account]
    return web.json_response(rows[0])


def routing_status(rt: Runtime) -> dict[str, Any]:
    loaded, status = rt.config, rt.reload_status
    return {
        "version": loaded.digest,
        "path": str(loaded.path),
        "loaded_at_ms": status.loaded_at_ms,
        "accounts": list(loaded.config.accounts),
        "rules": [r.model_dump(mode="json", by_alias=True) for r in loaded.config.rules],
        "defaults": loaded.config.defaults.model_dump(mode="json"),
        "health": loaded.config.health.model_dump(mode="json"),
        "breaker": loaded.config.breaker.model_dump(mode="json"),
        "last_refused": (
            {"problems": status.last_error, "at_ms": status.last_error_at_ms}
            if status.last_error
            else None
        ),
    }


async def show_routing(request: web.Request) -> web.Response:
    return web.json_response(routing_status(authorize(request)))


async def reload_routing(request: web.Request) -> web.Response:
    rt = authorize(request)
    if not rt.reload():
        raise InvalidRequest(
            "config_refused",
            "The routing file was refused; the config in force is unchanged: "
            + "; ".join(rt.reload_status.last_error or []),
            param="routing",
        )
    return web.json_response(routing_status(rt))


async def explain_request(rt: Runtime, query: ExplainQuery) -> dict[str, Any]:
    """Exactly what the live router would decide for the described payment."""
    table = rt.table
    moment: datetime = query.at or rt.clock.utcnow()
    try:
        decision = await decide(
            table.loaded.config,
            table.accounts,
            rt.breakers,
            RouteRequest(
                payment_id=query.payment_id,
                method=query.method,
                currency=query.currency,
                amount=query.amount,
                wallet=query.wallet,
                merchant_id=query.merchant,
                metadata=query.metadata,
                now=moment,
            ),
            pinned=query.channel,
            livemode=query.livemode,
        )
    except DomainError as exc:
        # `payrouter routes explain` shows the same refusal as the endpoint answers.
        raise api_error(exc) from None
    return {"config_version": table.loaded.digest} | decision.explain()


async def explain(request: web.Request) -> web.Response:
    rt = authorize(request)
    raw: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for name, value in request.query.items():
        if name.startswith("metadata."):
            metadata[name.removeprefix("metadata.")] = value
        else:
            raw[name] = value
    query = validate(ExplainQuery, raw | {"metadata": metadata})
    return web.json_response(await explain_request(rt, query))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/channels", list_channels)
    app.router.add_put("/admin/channels/{account}/override", override)
    app.router.add_get("/admin/routing", show_routing)
    app.router.add_post("/admin/routing/reload", reload_routing)
    app.router.add_get("/admin/routing/explain", explain)
    app.router.add_get("/admin/webhooks/dead", list_dead_letters)
    app.router.add_post("/admin/webhooks/{merchant}/{id}/resend", resend_dead_letter)
    endpoints = "/admin/merchants/{merchant}/webhook-endpoints"
    app.router.add_get(endpoints + "/disabled", list_disabled_endpoints)
    app.router.add_post(endpoints + "/{id}/enable", enable_disabled_endpoint)
