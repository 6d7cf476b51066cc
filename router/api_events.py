"""Merchant API routes for webhook events (`/v1/events...`)."""

from __future__ import annotations

import re
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from router.api import query_params
from router.errors import InvalidRequest, NotFound
from router.http import RUNTIME, json_response, principal
from router.models import Cursor, Limit
from router.store.events import StoredEvent

EVENT_ID = re.compile(r"^evt_[A-Za-z0-9]{8,64}$")
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


def _public(event: StoredEvent, attempts: list[dict[str, Any]] | None) -> Event:
    delivery = None
    if attempts is not None:
        delivery = Delivery.model_validate({"state": event.state, "attempts": attempts})
    return Event.model_validate(event.body() | {"delivery": delivery})


async def _event(request: web.Request) -> StoredEvent:
    evt_id = request.match_info["id"]
    found = None
    if EVENT_ID.match(evt_id):
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
        if EVENT_ID.match(query.starting_after):
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


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/events", list_events)
    app.router.add_get("/v1/events/{id}", get_event)
    app.router.add_post("/v1/events/{id}/resend", resend_event)
