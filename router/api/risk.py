"""The operators' risk API, behind the admin token (`router.api.admin.authorize`).

    GET    /admin/risk                        the risk file in force, last reload, list names
    POST   /admin/risk/reload                 reload config/risk.yaml now
    GET    /admin/risk/explain/{payment_id}   the payment's decision, and the rules now
    GET    /admin/risk/lists/{name}           a list's entries
    PUT    /admin/risk/lists/{name}           {"entries": [...]}: the list becomes these
    POST   /admin/risk/lists/{name}/entries   {"entries": [...]}: add these
    DELETE /admin/risk/lists/{name}           remove the list

Entries are payer ids or IP networks (`203.0.113.0/24`, or one address). Every router reads
the lists again within `cache_s` (5 s); the one that answered, at once.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from router.api.admin import authorize
from router.api.middleware import parse_body
from router.errors import InvalidRequest, NotFound
from router.ids import PAYMENT_ID
from router.risk.explain import explain, request_of
from router.runtime import Runtime

LIST_NAME = r"^[a-z][a-z0-9_-]{0,63}$"
Entry = Annotated[StrictStr, Field(min_length=1, max_length=128)]


class Entries(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: Annotated[list[Entry], Field(max_length=10_000)]


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not re.fullmatch(LIST_NAME, name):
        raise InvalidRequest(
            "invalid_list_name", "A list name is 1 to 64 of a-z, 0-9, _ and -", param="name"
        )
    return name


async def show(request: web.Request) -> web.Response:
    return web.json_response(authorize(request).risk.describe())


async def reload(request: web.Request) -> web.Response:
    rt = authorize(request)
    if not rt.risk.reload():
        raise InvalidRequest(
            "config_refused",
            "The risk file was refused; the config in force is unchanged: "
            + "; ".join(rt.risk.status.last_error or []),
            param="risk",
        )
    return web.json_response(rt.risk.describe())


async def explain_payment(rt: Runtime, pay_id: str) -> dict[str, Any]:
    """The stored decision of a payment beside what the rules in force say now."""
    stored = await rt.store.payments.find(pay_id) if PAYMENT_ID.fullmatch(pay_id) else None
    if stored is None:
        raise NotFound("payment", pay_id)
    p = stored.payment
    req = request_of(p, stored.merchant_id, stored.created_ms, stored.client_ip, stored.payer_id)
    now = await explain(rt.risk, req)
    decided = None if p.risk is None else p.risk.model_dump()
    return {"payment": p.id, "merchant": stored.merchant_id, "decided": decided, "now": now}


async def explain_route(request: web.Request) -> web.Response:
    rt = authorize(request)
    return web.json_response(await explain_payment(rt, request.match_info["payment_id"]))


async def get_list(request: web.Request) -> web.Response:
    rt = authorize(request)
    name = _name(request)
    return web.json_response({"name": name, "entries": sorted(await rt.store.risk.entries(name))})


async def put_list(request: web.Request) -> web.Response:
    rt = authorize(request)
    name = _name(request)
    body = await parse_body(request, Entries)
    await rt.store.risk.replace(name, body.entries)
    await rt.risk.refresh_lists()
    return web.json_response({"name": name, "entries": sorted(set(body.entries))})


async def add_entries(request: web.Request) -> web.Response:
    rt = authorize(request)
    name = _name(request)
    body = await parse_body(request, Entries)
    if body.entries:
        await rt.store.risk.add(name, body.entries)
    await rt.risk.refresh_lists()
    return web.json_response({"name": name, "entries": sorted(await rt.store.risk.entries(name))})


async def delete_list(request: web.Request) -> web.Response:
    rt = authorize(request)
    name = _name(request)
    await rt.store.risk.replace(name, [])
    await rt.risk.refresh_lists()
    return web.json_response({"name": name, "deleted": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/risk", show)
    app.router.add_post("/admin/risk/reload", reload)
    app.router.add_get("/admin/risk/explain/{payment_id}", explain_route)
    app.router.add_get("/admin/risk/lists/{name}", get_list)
    app.router.add_put("/admin/risk/lists/{name}", put_list)
    app.router.add_post("/admin/risk/lists/{name}/entries", add_entries)
    app.router.add_delete("/admin/risk/lists/{name}", delete_list)
