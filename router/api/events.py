"""Merchant API routes for webhook events (`/v1/events...`) and the endpoints they go to.

    GET  /v1/webhook_endpoints/disabled      endpoints disabled because they answered 410
    POST /v1/webhook_endpoints/{id}/enable   deliver to that endpoint again

An endpoint is a URL (a payment's `notify_url` or the merchant's default); its id `we_...` is
derived from the URL. Events that became dead letters while it was disabled are resent with
`POST /v1/events/{id}/resend` once it is enabled again.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.api.middleware import RUNTIME, json_response, principal
from router.api.payments import query_params
from router.clock import from_ms, rfc3339
from router.errors import InvalidRequest, NotFound
from router.models import Cursor, Limit
from router.payments.recorded import FRESH_MS
from router.record import reads
from router.runtime import Runtime
from router.store.endpoints import DisabledEndpoint
from router.store.events import EventStore, StoredEvent, UnreadableEvent

EVENT_ID = re.compile(r"evt_[A-Za-z0-9]{8,64}")
ENDPOINT_ID = re.compile(r"we_[0-9a-f]{24}")
EventType = Literal[
    "payment.succeeded",
    "payment.failed",
    "payment.closed",
    "refund.succeeded",
    "refund.failed",
    "settlement.created",
]


class EventListQuery(BaseModel):
    """Query parameters of `GET /v1/events`."""

    model_config = ConfigDict(extra="forbid")

    type: EventType | None = None
    limit: Limit = 10
    starting_after: Cursor | None = Field(
        default=None, description="An event's id: the page starts after it."
    )


class Attempt(BaseModel):
    at: str
    url: str
    status: int | None
    ms: int
    error: str | None


class Delivery(BaseModel):
    state: Literal["pending", "retrying", "delivered", "dead", "no_endpoint"]
    attempts: list[Attempt]


class Event(BaseModel):
    """A webhook event: the body merchants receive, plus how its delivery went."""

    id: str
    object: Literal["event"] = "event"
    type: EventType
    created_at: str
    data: dict[str, Any]
    delivery: Delivery | None = None


class EventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Event]
    has_more: bool
    url: str = "/v1/events"


class WebhookEndpoint(BaseModel):
    """A URL the merchant's webhooks go to, and whether payrouter still sends to it."""

    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    status: Literal["enabled", "disabled"]
    disabled_at: str | None = Field(
        default=None, description="When it answered 410 Gone (absent: unknown or enabled)."
    )
    disabled_by_event: str | None = Field(
        default=None, description="The event whose delivery was answered with 410 Gone."
    )


class WebhookEndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpoint]
    has_more: bool = False
    url: str = "/v1/webhook_endpoints/disabled"


def endpoint_view(endpoint: DisabledEndpoint, *, enabled: bool = False) -> WebhookEndpoint:
    """The public shape of an endpoint, disabled or (just) enabled again."""
    if enabled:
        return WebhookEndpoint(id=endpoint.id, url=endpoint.url, status="enabled")
    at = endpoint.disabled_at_ms
    return WebhookEndpoint(
        id=endpoint.id,
        url=endpoint.url,
        status="disabled",
        disabled_at=rfc3339(from_ms(at)) if at is not None else None,
        disabled_by_event=endpoint.event_id,
    )


async def enable_endpoint(events: EventStore, mch: str, url_or_id: str) -> WebhookEndpoint:
    """Enable one of the merchant's disabled endpoints (by URL or id); 404 if none matches."""
    found = await events.endpoints.find(mch, url_or_id)
    if found is None:
        raise NotFound("disabled webhook endpoint", url_or_id)
    await events.endpoints.enable(mch, found.url)
    return endpoint_view(found, enabled=True)


def readable_attempts(rt: Runtime, event: StoredEvent, rows: list[Any]) -> list[Attempt]:
    """The event's attempts that can be read; the others are reported and left out."""
    out = []
    for number, row in enumerate(rows, start=1):
        try:
            out.append(Attempt.model_validate(row))
        except ValidationError:
            why = "not JSON" if row is None else "not an attempt record"
            rt.damaged.report("event_attempt", f"{event.id} attempt {number}", why)
    return out


def _public(event: StoredEvent, attempts: list[Attempt] | None) -> Event:
    """The event as merchants see it. Raises `UnreadableEvent` for a record that does not
    make one (an unknown type, say)."""
    delivery = None
    if attempts is not None:
        delivery = Delivery.model_validate({"state": event.state, "attempts": attempts})
    try:
        return Event.model_validate(event.body() | {"delivery": delivery})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise UnreadableEvent(event.merchant_id, event.id, f"{where}: {problem['msg']}") from None


async def read_event(rt: Runtime, mch: str, evt_id: str) -> StoredEvent | None:
    """The event, or None if there is none or its record does not make one (reported)."""
    try:
        found = await rt.store.events.get(mch, evt_id)
        if found is not None:
            _public(found, None)
    except UnreadableEvent as exc:
        rt.damaged.report("event", f"{mch}/{evt_id}", exc.reason)
        return None
    return found


async def _event(request: web.Request) -> StoredEvent:
    evt_id = request.match_info["id"]
    found = None
    if EVENT_ID.fullmatch(evt_id):
        found = await read_event(request.app[RUNTIME], principal(request).merchant.id, evt_id)
    if found is None:
        raise NotFound("event", evt_id)
    return found


async def _recorded(rt: Runtime, mch: str, evt_id: str) -> web.Response | None:
    """An event that left Redis after PAYROUTER_REDIS_RETENTION, from the record."""
    if rt.record is None or not EVENT_ID.fullmatch(evt_id):
        return None
    found = await reads.event(rt.record, evt_id)
    if found is None or found[0].merchant_id != mch:
        return None
    event, rows, _ = found
    return json_response(_public(event, readable_attempts(rt, event, list(rows))))


async def _gone_from_redis(
    rt: Runtime, mch: str, evt_id: str
) -> tuple[StoredEvent, list[dict[str, Any]], int] | None:
    """The record's copy of an event Redis no longer holds (past PAYROUTER_REDIS_RETENTION),
    with its attempts and version; None when Redis holds it, damaged or not (a damaged one is
    not answered from an older copy), or the record has no such event of this merchant."""
    if rt.record is None or not EVENT_ID.fullmatch(evt_id):
        return None
    try:
        if await rt.store.events.get(mch, evt_id) is not None:
            return None
    except UnreadableEvent:
        return None
    found = await reads.event(rt.record, evt_id)
    return found if found is not None and found[0].merchant_id == mch else None


async def _restore(rt: Runtime, mch: str, evt_id: str) -> bool:
    """Put an event the record holds (and Redis does not) back in Redis."""
    found = await _gone_from_redis(rt, mch, evt_id)
    if found is None:
        return False
    event, attempts, version = found
    await rt.store.changes.restore_event(event, attempts, version)
    return True


async def _shown(rt: Runtime, event: StoredEvent) -> web.Response:
    """A readable event (`read_event`) with the attempts of its delivery that can be read."""
    rows = await rt.store.events.attempts(event.merchant_id, event.id)
    return json_response(_public(event, readable_attempts(rt, event, rows)))


async def list_events(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    mch = principal(request).merchant.id
    query = query_params(request, EventListQuery)
    cursor = None
    if query.starting_after is not None:
        if EVENT_ID.fullmatch(query.starting_after):
            cursor = await read_event(rt, mch, query.starting_after)
            if cursor is None:
                gone = await _gone_from_redis(rt, mch, query.starting_after)
                cursor = None if gone is None else gone[0]
        if cursor is None:
            raise InvalidRequest(
                "resource_missing",
                f"starting_after: no such event {query.starting_after!r}",
                param="starting_after",
            )
    events, has_more = await _events(rt, mch, query, cursor)
    shown = []
    for event in events:
        try:
            shown.append(_public(event, None))
        except UnreadableEvent as exc:
            # A record the store can decode but that does not make an event (its type, say):
            # left out, so a page may hold fewer than `limit`.
            rt.damaged.report("event", f"{mch}/{event.id}", exc.reason)
    return json_response(EventList(data=shown, has_more=has_more))


async def _events(
    rt: Runtime, mch: str, query: EventListQuery, cursor: StoredEvent | None
) -> tuple[list[StoredEvent], bool]:
    """A page of events, newest first: from the record, which holds every event ever made
    (those past PAYROUTER_REDIS_RETENTION too), merged with the last `FRESH_MS` of Redis,
    which the drainer may not have copied yet. Without a record, Redis alone."""
    since = rt.clock.now_ms() - FRESH_MS
    recorded: list[StoredEvent] = []
    more = False
    if rt.record is not None:
        recorded, more = await reads.events_page(
            rt.record, mch, type_=query.type, limit=query.limit, after=cursor
        )
        if cursor is not None and cursor.created_ms < since:
            return recorded, more
    page = await rt.store.events.page(
        mch, limit=query.limit, starting_after=cursor, type_=query.type
    )
    for unreadable in page.unreadable:
        rt.damaged.report("event", f"{mch}/{unreadable.event_id}", unreadable.reason)
    if rt.record is None:
        return page.events, page.has_more
    recent = [e for e in page.events if e.created_ms >= since]
    # Damaged in Redis (reported): left out, not answered from an older copy in the record.
    damaged = {exc.event_id for exc in page.unreadable}
    merged = {e.id: e for e in recorded if e.id not in damaged} | {e.id: e for e in recent}
    ordered = sorted(merged.values(), key=lambda e: (e.created_ms, e.id), reverse=True)
    return ordered[: query.limit], more or len(ordered) > query.limit


async def get_event(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        event = await _event(request)
    except NotFound:
        mch, evt_id = principal(request).merchant.id, request.match_info["id"]
        try:
            await rt.store.events.get(mch, evt_id)
        except UnreadableEvent:
            # Damaged in Redis (reported): not answered from an older copy in the record.
            raise NotFound("event", evt_id) from None
        recorded = await _recorded(rt, mch, evt_id)
        if recorded is None:
            raise
        return recorded
    return await _shown(rt, event)


async def resend_event(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        event = await _event(request)
    except NotFound:
        # Left Redis after PAYROUTER_REDIS_RETENTION: put back from the record, then resent.
        if not await _restore(rt, principal(request).merchant.id, request.match_info["id"]):
            raise
        event = await _event(request)
    await rt.store.events.resend(event)
    fresh = await rt.store.events.get(event.merchant_id, event.id)
    assert fresh is not None
    return await _shown(rt, fresh)


async def list_disabled_endpoints(request: web.Request) -> web.Response:
    events = request.app[RUNTIME].store.events
    found = await events.endpoints.list(principal(request).merchant.id)
    return json_response(WebhookEndpointList(data=[endpoint_view(e) for e in found]))


async def enable_disabled_endpoint(request: web.Request) -> web.Response:
    events = request.app[RUNTIME].store.events
    endpoint_id = request.match_info["id"]
    if not ENDPOINT_ID.fullmatch(endpoint_id):
        raise NotFound("disabled webhook endpoint", endpoint_id)
    mch = principal(request).merchant.id
    return json_response(await enable_endpoint(events, mch, endpoint_id))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/events", list_events)
    app.router.add_get("/v1/events/{id}", get_event)
    app.router.add_post("/v1/events/{id}/resend", resend_event)
    app.router.add_get("/v1/webhook_endpoints/disabled", list_disabled_endpoints)
    app.router.add_post("/v1/webhook_endpoints/{id}/enable", enable_disabled_endpoint)
