"""HTTP plumbing shared by every route: error bodies, request ids, input parsing, idempotency.

Middlewares, outermost first:
1. `request_context`: a request id on every answer, metrics, every error as the contract's
   error object (an unexpected exception is a logged 500 `api_error`, never a traceback);
2. `authentication`: merchant routes (`/v1/...` except channel callbacks) get a `Principal`;
3. `idempotency`: a POST with `Idempotency-Key` is run once; its answer is replayed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from router.auth import Principal, authenticate
from router.errors import ApiError, IdempotencyError, InternalError, InvalidRequest
from router.ids import new_id
from router.runtime import Runtime

log = logging.getLogger("payrouter.http")
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RUNTIME = web.AppKey("runtime", Runtime)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-.]{8,64}$")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_BODY = 64 * 1024


def error_response(exc: ApiError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers=exc.headers)


def render(model: BaseModel) -> str:
    """The JSON text of an API object, exactly as answered and as idempotency replays it."""
    return model.model_dump_json()


def json_response(model: BaseModel | dict[str, Any], status: int = 200) -> web.Response:
    if isinstance(model, BaseModel):
        return web.Response(text=render(model), status=status, content_type="application/json")
    return web.json_response(model, status=status)


@dataclass
class IdempotentRequest:
    """The idempotency record a POST runs under. A handler that writes its own answer into the
    record (in the same round trip as its last state change) sets `finished`."""

    merchant_id: str
    key: str
    token: str
    finished: bool = False


IDEMPOTENT = web.RequestKey("idempotent", IdempotentRequest)


def _http_error(exc: web.HTTPException) -> ApiError:
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
    request_id = given if REQUEST_ID_PATTERN.match(given) else new_id("req", 20)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(_http_error(exc))
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
    metrics.http_requests.labels(request.method, route, str(response.status)).inc()
    metrics.http_latency.labels(request.method, route).observe(time.perf_counter() - started)
    return response


def _merchant_route(request: web.Request) -> bool:
    return request.path.startswith("/v1/") and not request.path.startswith("/v1/notify/")


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _merchant_route(request):
        rt = request.app[RUNTIME]
        request[PRINCIPAL] = await authenticate(request, rt.store, rt.clock.now())
    return await handler(request)


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or key is None or not _merchant_route(request):
        return await handler(request)
    if not IDEMPOTENCY_KEY_PATTERN.match(key):
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
    begun = await rt.store.idempotency.begin(mch, key, fingerprint, token)
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
        raise IdempotencyError(
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being processed; retry later",
            status=409,
            param="Idempotency-Key",
        )
    context = request[IDEMPOTENT] = IdempotentRequest(mch, key, token)
    try:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc)
    except BaseException:
        await rt.store.idempotency.release(mch, key, token)
        raise
    if context.finished:
        return response
    if not isinstance(response, web.Response) or response.status >= 500:
        # Server-side failures are not remembered: a retry with the same key runs again.
        await rt.store.idempotency.release(mch, key, token)
        return response
    assert response.text is not None
    await rt.store.idempotency.finish(mch, key, token, response.status, response.text)
    return response


def idempotent(request: web.Request) -> IdempotentRequest | None:
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
