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
from pydantic import BaseModel, ConfigDict, Field

from router.api import query_params
from router.clock import from_ms, rfc3339
from router.errors import InvalidRequest, NotFound
from router.http import RUNTIME, json_response, principal
from router.models import Cursor, Limit
from router.store.endpoints import DisabledEndpoint
from router.store.events import EventStore, StoredEvent

EVENT_ID = re.compile(r"evt_[A-Za-z0-9]{8,64}")
ENDPOINT_ID = re.compile(r"we_[0-9a-f]{24}")
EventType = Literal[
    "payment.succeeded", "payment.failed", "payment.closed", "refund.succeeded", "refund.failed"
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


def _public(event: StoredEvent, attempts: list[dict[str, Any]] | None) -> Event:
    delivery = None
    if attempts is not None:
        delivery = Delivery.model_validate({"state": event.state, "attempts": attempts})
    return Event.model_validate(event.body() | {"delivery": delivery})


async def _event(request: web.Request) -> StoredEvent:
    evt_id = request.match_info["id"]
    found = None
    if EVENT_ID.fullmatch(evt_id):
        found = await request.app[RUNTIME].store.events.get(principal(request).merchant.id, evt_id)
    if found is None:
        raise NotFound("event", evt_id)
    return found


async def list_events(request: web.Request) -> web.Response:
    store = request.app[RUNTIME].store
    mch = principal(request).merchant.id
    query = query_params(request, EventListQuery)
    cursor = None
    if query.starting_after is not None:
        if EVENT_ID.fullmatch(query.starting_after):
            cursor = await store.events.get(mch, query.starting_after)
        if cursor is None:
            raise InvalidRequest(
                "resource_missing",
                f"starting_after: no such event {query.starting_after!r}",
                param="starting_after",
            )
    page, has_more = await store.events.page(
        mch, limit=query.limit, starting_after=cursor, type_=query.type
    )
    return json_response(EventList(data=[_public(e, None) for e in page], has_more=has_more))


async def get_event(request: web.Request) -> web.Response:
    event = await _event(request)
    attempts = await request.app[RUNTIME].store.events.attempts(event.merchant_id, event.id)
    return json_response(_public(event, attempts))


async def resend_event(request: web.Request) -> web.Response:
    event = await _event(request)
    store = request.app[RUNTIME].store
    await store.events.resend(event)
    fresh = await store.events.get(event.merchant_id, event.id)
    assert fresh is not None
    return json_response(_public(fresh, await store.events.attempts(event.merchant_id, event.id)))


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
