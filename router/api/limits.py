"""Rate limits at the door, and the create's risk screen: how they are answered over HTTP.

Every merchant request draws a token from its budget (`config/risk.yaml`, per merchant tier,
per API key, a global ceiling): a create from the `create` budget, a refund from `refund`,
anything else from `read` (an unknown URL's 404 too). Every answer under /v1 carries
`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the bucket is
full again) of its tightest bucket; a request without a token is `429 rate_limit_error` with
`Retry-After`, and did nothing. A request that fails authentication draws from its client
address's bucket instead (`unauthenticated_limits`).

A create takes its token in the same script that counts its velocity, and that script is
sent in the round trip of the create's idempotency BEGIN (`router.api.prescreen`): no round
trip of its own. The handler judges the rules on what it found (`screen_create`). A create
without an Idempotency-Key sends the script on its own; one whose body does not parse takes
its token afterwards, and a 429 then replaces the answer (so does one whose key answered
without running: a replay, a key in use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiohttp import web

from router.api.errors import api_error
from router.api.middleware import (
    RUNTIME,
    Handler,
    error_response,
    http_error,
    parse_body,
    principal,
)
from router.api.prescreen import PRESCREEN, Prescreen
from router.clock import from_ms
from router.domain_errors import DomainError
from router.errors import ApiError, AuthenticationFailed, PermissionDenied, RateLimited
from router.models import CreatePaymentRequest
from router.risk.config import Kind
from router.risk.control import Screen
from router.risk.rules import RiskRequest
from router.store.risk import Taken


@dataclass
class RateState:
    """The token a request drew, once it drew one."""

    taken: Taken | None = None
    drawn: bool = False


RATE = web.RequestKey("rate", RateState)
CREATE_BODY = web.RequestKey("create_body", CreatePaymentRequest)


def kind_of(request: web.Request) -> Kind:
    """Which budget a merchant request draws on."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else ""
    if request.method == "POST" and route == "/v1/payments":
        return "create"
    if request.method == "POST" and route == "/v1/payments/{id}/refunds":
        return "refund"
    return "read"


def _merchant_route(request: web.Request) -> bool:
    return request.path.startswith("/v1/") and not request.path.startswith("/v1/notify/")


def headers(taken: Taken) -> dict[str, str]:
    """The IETF RateLimit header fields of a bucket."""
    return {
        "RateLimit-Limit": str(taken.limit),
        "RateLimit-Remaining": str(taken.remaining),
        "RateLimit-Reset": str(math.ceil(taken.reset_ms / 1000)),
    }


@web.middleware
async def unauthenticated_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A merchant request that fails authentication (401, or 403 for a key this router may
    not take) draws from its client address's bucket (`RiskControl.take_unauthenticated`):
    its answer carries that bucket's RateLimit fields, and once the bucket is empty it is
    `429` instead, which slows down guessing keys. The address is the connection's peer:
    behind a proxy, the proxy's."""
    if not _merchant_route(request):
        return await handler(request)
    try:
        return await handler(request)
    except (AuthenticationFailed, PermissionDenied) as exc:
        taken = await request.app[RUNTIME].risk.take_unauthenticated(request.remote or "unknown")
        if taken is None:
            raise
        if not taken.allowed:
            raise refusal(taken, "unauthenticated") from None
        response = error_response(exc)
        response.headers.update(headers(taken))
        return response


def refusal(taken: Taken, kind: str) -> RateLimited:
    wait = max(1, math.ceil(taken.retry_ms / 1000))
    return RateLimited(
        "rate_limited",
        f"Too many {kind} requests: the budget allows {taken.limit} at once; retry in {wait} s",
        headers=headers(taken),
        retry_after=wait,
    )


@web.middleware
async def rate_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _merchant_route(request):
        return await handler(request)
    rt = request.app[RUNTIME]
    who = principal(request)
    kind = kind_of(request)
    state = request[RATE] = RateState()
    if kind != "create":
        state.taken = await rt.risk.take(who.merchant.id, who.key.id, kind)
        state.drawn = True
        if state.taken is not None and not state.taken.allowed:
            raise refusal(state.taken, kind)
    else:
        await _prepare(request)
    try:
        response = await handler(request)
    except (ApiError, DomainError) as caught:
        exc = api_error(caught) if isinstance(caught, DomainError) else caught
        response = error_response(exc)
    except web.HTTPException as caught:
        # An unknown /v1 URL or method (aiohttp's 404/405) is answered here, with the
        # budget it spent, rather than by the outer middleware without it.
        if caught.status < 400:
            raise
        response = error_response(http_error(caught))
    if not state.drawn:
        pre = request.get(PRESCREEN)
        if pre is not None and pre.screened is not None:
            state.taken = pre.screened.taken
            rt.risk.count_refusal(state.taken, kind)
        else:
            state.taken = await rt.risk.take(who.merchant.id, who.key.id, kind)
        state.drawn = True
        if state.taken is not None and not state.taken.allowed:
            return error_response(refusal(state.taken, kind))
    if state.taken is not None:
        response.headers.update(headers(state.taken))
    return response


async def _prepare(request: web.Request) -> None:
    """Parse a create and build its screen, for the idempotency middleware to send with its
    BEGIN. A body that does not parse is left to the handler to refuse."""
    try:
        req = await parse_body(request, CreatePaymentRequest)
    except ApiError:
        return
    request[CREATE_BODY] = req
    pending = request.app[RUNTIME].risk.prepare(
        principal(request).key.id, _risk_request(request, req)
    )
    if pending is not None:
        request[PRESCREEN] = Prescreen(pending)


def create_body(request: web.Request) -> CreatePaymentRequest | None:
    """The create's body as the rate-limit middleware parsed it (None: it did not parse)."""
    return request.get(CREATE_BODY)


def _risk_request(request: web.Request, req: CreatePaymentRequest) -> RiskRequest:
    rt = request.app[RUNTIME]
    who = principal(request)
    return RiskRequest(
        merchant=who.merchant.id,
        amount=req.amount,
        currency=req.currency,
        method=req.method,
        wallet=req.wallet,
        channel=req.channel,
        livemode=who.livemode,
        metadata=req.metadata,
        ip=req.client_ip,
        payer=req.payer_id,
        now=from_ms(rt.clock.now_ms()),
    )


async def screen_create(request: web.Request, req: CreatePaymentRequest) -> Screen:
    """Draw the create's token and run the risk rules on it (no round trip of its own when
    it went with the idempotency BEGIN); raises `RateLimited` when the budget is spent."""
    rt = request.app[RUNTIME]
    pre = request.get(PRESCREEN)
    if pre is not None and create_body(request) is req:
        screened = pre.screened or await rt.store.risk.run(pre.pending.call)
        screen = rt.risk.conclude(pre.pending, screened)
    else:
        screen = await rt.risk.screen(principal(request).key.id, _risk_request(request, req))
    state = request.get(RATE)
    if state is not None:
        state.taken, state.drawn = screen.taken, True
    if screen.taken is not None and not screen.taken.allowed:
        raise refusal(screen.taken, "create")
    return screen
