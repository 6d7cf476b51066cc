"""Rate limits at the door, and the create's risk screen: how they are answered over HTTP.

Every merchant request draws a token from its budget (`config/risk.yaml`, per merchant tier,
per API key, a global ceiling): a create from the `create` budget, a refund from `refund`,
anything else from `read`. Every answer to an authenticated merchant request carries
`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the bucket is
full again) of its tightest bucket; a request without a token is `429 rate_limit_error` with
`Retry-After`, and did nothing.

A create takes its token inside `screen_create`, in the same script that counts its velocity
(one round trip for both); a create that ends before it gets there (bad input, an
idempotent replay) takes its token afterwards, and a 429 then replaces the answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiohttp import web

from router.api.errors import api_error
from router.api.middleware import RUNTIME, Handler, error_response, principal
from router.clock import from_ms
from router.domain_errors import DomainError
from router.errors import ApiError, RateLimited
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


def refusal(taken: Taken, kind: Kind) -> RateLimited:
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
    try:
        response = await handler(request)
    except (ApiError, DomainError) as caught:
        exc = api_error(caught) if isinstance(caught, DomainError) else caught
        response = error_response(exc)
    if not state.drawn:
        state.taken = await rt.risk.take(who.merchant.id, who.key.id, kind)
        state.drawn = True
        if state.taken is not None and not state.taken.allowed:
            return error_response(refusal(state.taken, kind))
    if state.taken is not None:
        response.headers.update(headers(state.taken))
    return response


async def screen_create(request: web.Request, req: CreatePaymentRequest) -> Screen:
    """Draw the create's token and run the risk rules on it (one round trip); raises
    `RateLimited` when the budget is spent."""
    rt = request.app[RUNTIME]
    who = principal(request)
    screen = await rt.risk.screen(
        who.key.id,
        RiskRequest(
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
        ),
    )
    state = request.get(RATE)
    if state is not None:
        state.taken, state.drawn = screen.taken, True
    if screen.taken is not None and not screen.taken.allowed:
        raise refusal(screen.taken, "create")
    return screen
