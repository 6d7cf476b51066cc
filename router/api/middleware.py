"""HTTP plumbing shared by every route: error bodies, request ids, input parsing, idempotency.

Middlewares, outermost first:
1. `request_context`: a request id and a W3C `traceparent` on every answer (both also in
   every log line of the request, `router.logs`), metrics, every error as the contract's
   error object (a domain error through `router.api.errors.api_error`): an unreachable
   store is `503 store_unavailable` with `Retry-After`, an unexpected exception a logged 500
   `api_error`, never a traceback;
2. `authentication`: merchant routes (`/v1/...` except channel callbacks) get a `Principal`;
3. `idempotency`: a POST with `Idempotency-Key` is run once; its final answer is replayed.
   A create's BEGIN carries its risk screen in the same round trip (`router.api.prescreen`,
   built by `router.api.limits`, which runs between 2 and 3).

Which answers an Idempotency-Key remembers (as Stripe: only those of a request that ran):
2xx, and the 4xx `channel_error` of a create or refund the channel refused (the failed
payment or refund is named), and the `402 risk_declined` of a blocked create (the failed
payment is named). Not remembered, so a retry runs again: validation errors (the
request did nothing), conflicts (`409`: they depend on state that changes) and 5xx. While a
request runs it renews a short lease on its key; a retry meanwhile gets `409
idempotency_key_in_use` with `Retry-After`. A retry that takes over the key of a request that
died answers about the payment or refund that request created (found where it was made:
`router.payments.service`, `router.payments.refunds`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from router import logs
from router.api.auth import Principal, authenticate
from router.api.errors import api_error
from router.api.prescreen import begin
from router.domain_errors import DomainError
from router.errors import (
    ApiError,
    ChannelFailed,
    IdempotencyError,
    InternalError,
    InvalidRequest,
    RiskRefused,
    StoreUnavailable,
)
from router.ids import new_id
from router.logs import TraceContext
from router.metrics import http_method
from router.payments.binding import KeyBinding
from router.record.connect import RecordUnavailable
from router.runtime import Runtime
from router.store.errors import STORE_UNAVAILABLE
from router.store.idempotency import IdempotencyKeyLost

log = logging.getLogger("payrouter.http")
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RUNTIME = web.AppKey("runtime", Runtime)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-.]{8,64}$")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_BODY = 64 * 1024


def error_response(exc: ApiError) -> web.Response:
    response = web.json_response(exc.body(), status=exc.status, headers=exc.headers)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def render(model: BaseModel) -> str:
    """The JSON text of an API object, exactly as answered and as idempotency replays it."""
    return model.model_dump_json()


def json_response(model: BaseModel | dict[str, Any], status: int = 200) -> web.Response:
    if isinstance(model, BaseModel):
        return web.Response(text=render(model), status=status, content_type="application/json")
    return web.json_response(model, status=status)


IDEMPOTENT = web.RequestKey("idempotent", KeyBinding)


def http_error(exc: web.HTTPException) -> ApiError:
    """aiohttp's own error answer (an unknown URL, a method it has no route for) as the
    contract's error object."""
    if exc.status == 404:
        return ApiError("resource_missing", "Unrecognized request URL", status=404, param="path")
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        return ApiError(
            "method_not_allowed",
            f"Method not allowed for this URL; allowed: {allowed}",
            status=405,
            headers={"Allow": allowed},
        )
    if exc.status == 413:
        return ApiError(
            "body_too_large",
            f"Request bodies are limited to {MAX_BODY} bytes",
            status=413,
            param="body",
        )
    return ApiError("invalid_request", exc.reason or "Bad request", status=exc.status)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    request_id = given if REQUEST_ID_PATTERN.fullmatch(given) else new_id("req", 20)
    trace = TraceContext.from_header(request.headers.get("traceparent"))
    with logs.bind_request(request_id, trace):
        response = await _answer(request, handler, request_id)
        response.headers["traceparent"] = trace.header
        return response


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    started = time.perf_counter()
    named = request.match_info.get("id", "")
    if named.startswith("pay_"):
        logs.bind(payment=named)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc)
    except DomainError as exc:
        response = error_response(api_error(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(http_error(exc))
    except STORE_UNAVAILABLE as exc:
        log.warning(
            "store unavailable request_id=%s %s %s: %s: %s",
            request_id,
            request.method,
            request.path,
            type(exc).__name__,
            exc,
        )
        response = error_response(
            StoreUnavailable(
                "store_unavailable",
                "The router cannot reach its store right now. Retry shortly with the same "
                "Idempotency-Key: the retry answers about anything this request began.",
            )
        )
    except RecordUnavailable as exc:
        log.warning(
            "record unavailable request_id=%s %s %s: %s",
            request_id,
            request.method,
            request.path,
            exc,
        )
        response = error_response(
            StoreUnavailable(
                "record_unavailable",
                "The router cannot reach its database right now (this object left Redis). "
                "Retry shortly.",
            )
        )
    except Exception:
        log.exception(
            "unhandled error request_id=%s %s %s", request_id, request.method, request.path
        )
        response = error_response(
            InternalError("internal_error", f"Internal error; quote request id {request_id}")
        )
    response.headers["X-Request-Id"] = request_id
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    metrics = request.app[RUNTIME].metrics
    method = http_method(request.method)
    elapsed = time.perf_counter() - started
    metrics.http_requests.labels(method, route, str(response.status)).inc()
    metrics.http_latency.labels(method, route).observe(elapsed)
    # One line per API request; the probes and scrapes only when debugging.
    level = logging.INFO if route.startswith(("/v1/", "/admin/")) else logging.DEBUG
    log.log(
        level,
        "%s %s %d",
        method,
        route,
        response.status,
        extra={
            "method": method,
            "route": route,
            "status": response.status,
            "duration_ms": round(elapsed * 1000, 1),
        },
    )
    return response


def _merchant_route(request: web.Request) -> bool:
    return request.path.startswith("/v1/") and not request.path.startswith("/v1/notify/")


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _merchant_route(request):
        rt = request.app[RUNTIME]
        request[PRINCIPAL] = found = await authenticate(request, rt.store, rt.clock.now())
        logs.bind(merchant=found.merchant.id)
    return await handler(request)


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or key is None or not _merchant_route(request):
        return await handler(request)
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise InvalidRequest(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
            param="Idempotency-Key",
        )
    rt = request.app[RUNTIME]
    mch = principal(request).merchant.id
    body = await request.read()
    fingerprint = hashlib.sha256(
        request.method.encode() + b"\n" + request.raw_path.encode() + b"\n" + body
    ).hexdigest()
    token = new_id("idem", 16)
    lease_s = rt.settings.idempotency_lease_s
    begun = await begin(request, rt, mch, key, fingerprint, token, int(lease_s * 1000))
    if begun.outcome == "replay":
        return web.Response(
            status=begun.status,
            text=begun.body,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    if begun.outcome == "mismatch":
        raise IdempotencyError(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request",
            status=422,
            param="Idempotency-Key",
        )
    if begun.outcome == "in_flight":
        raise _key_in_use(begun.retry_after_s)
    context = request[IDEMPOTENT] = KeyBinding(mch, key, token, answer=render)
    done = asyncio.Event()
    renewal = asyncio.create_task(_keep_lease(rt, context, lease_s, done))
    try:
        response, remember = await _run(request, handler)
    except IdempotencyKeyLost:
        # This request stalled past its lease and another attempt took the key over.
        return error_response(_key_in_use(1))
    except BaseException:
        await _release(rt, context)
        raise
    finally:
        # Stopped by an event, not cancelled: a Redis command cancelled half-way can leave
        # its connection waiting for an answer that never comes.
        done.set()
        await renewal
    if context.finished:
        return response
    if not remember or not isinstance(response, web.Response):
        await _release(rt, context)
        return response
    assert response.text is not None
    await rt.store.idempotency.finish(mch, key, token, response.status, response.text)
    return response


async def _run(request: web.Request, handler: Handler) -> tuple[web.StreamResponse, bool]:
    """The handler's answer, and whether the key should remember it."""
    try:
        response = await handler(request)
    except (ApiError, DomainError) as caught:
        exc = api_error(caught) if isinstance(caught, DomainError) else caught
        # A refusal the channel gave ends a request that did something (the failed payment
        # or refund is named); every other error left nothing behind, or depends on state
        # that changes (409s), so a retry must run again rather than replay it.
        remembered = isinstance(exc, ChannelFailed | RiskRefused) and exc.status < 500
        return error_response(exc), remembered
    return response, response.status < 300


def _key_in_use(retry_after_s: int) -> IdempotencyError:
    return IdempotencyError(
        "idempotency_key_in_use",
        f"A request with this Idempotency-Key is still being processed; retry in {retry_after_s} s",
        status=409,
        param="Idempotency-Key",
        retry_after=retry_after_s,
    )


async def _keep_lease(
    rt: Runtime, context: KeyBinding, lease_s: float, done: asyncio.Event
) -> None:
    """Renew the request's lease on its key until `done`, so that the lease can be short: a
    retry after a crash waits at most one lease, not the longest a request may take."""
    lease_ms = int(lease_s * 1000)
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=lease_s / 3)
            if done.is_set():
                return
            owned = await rt.store.idempotency.renew(
                context.merchant_id, context.key, context.token, lease_ms
            )
            if not owned:
                return
    except STORE_UNAVAILABLE as exc:
        log.warning("idempotency lease not renewed: %s: %s", type(exc).__name__, exc)
    except Exception:
        # Renewal is a courtesy to retries; it must never fail the request it renews for.
        log.exception("idempotency lease not renewed")


async def _release(rt: Runtime, context: KeyBinding) -> None:
    try:
        await rt.store.idempotency.release(context.merchant_id, context.key, context.token)
    except STORE_UNAVAILABLE as exc:
        # The lease runs out by itself; the request's own error is what the client sees.
        log.warning("idempotency key not released: %s: %s", type(exc).__name__, exc)


def idempotent(request: web.Request) -> KeyBinding | None:
    return request.get(IDEMPOTENT)


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


async def parse_body(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise InvalidRequest(
                "invalid_json", f"The body is not valid JSON: {exc}", param="body"
            ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("invalid_json", "The body must be a JSON object", param="body")
    return validate(model, data)


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validation_error(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    param = ".".join(str(part) for part in first["loc"]) or "body"
    kind = first["type"]
    code = (
        "parameter_missing"
        if kind == "missing"
        else "parameter_unknown"
        if kind == "extra_forbidden"
        else "parameter_invalid"
    )
    message = first["msg"]
    if kind == "extra_forbidden":
        message = "Unknown parameter"
    return InvalidRequest(code, f"{param}: {message}", param=param)
