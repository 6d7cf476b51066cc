"""The `/sim/` control-plane routes every channel simulator serves the same way.

`GET /sim/accounts` lists the sandbox credentials bundles; `POST /sim/buyer/pay` and
`POST /sim/buyer/decline` take `{"code": ...}` (whatever the buyer was given: a QR code, a
payment code, a cashier URL) and act as the buyer. Reading the body, the 400/404/409 answers
and the route wiring are channel-neutral; each channel says how a code finds its order, what
paying and declining do, and how the order is shown back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from channels.sim.kit import control_error, read_json_object
from channels.sim.state import SimulatorCore

SimT = TypeVar("SimT", bound=SimulatorCore[Any])
OrderT = TypeVar("OrderT")
ErrorT = TypeVar("ErrorT", bound=Exception)


def accounts_route(sim_key: web.AppKey[SimT]) -> web.RouteDef:
    """`GET /sim/accounts`: every sandbox account's credentials bundle."""

    async def sim_accounts(request: web.Request) -> web.Response:
        sim = request.app[sim_key]
        bundles = [account.credentials.bundle() for account in sim.accounts.values()]
        return web.json_response({"accounts": bundles})

    return web.get("/sim/accounts", sim_accounts)


def buyer_routes(
    *,
    find: Callable[[web.Request, str], OrderT | web.Response | None],
    pay: Callable[[web.Request, OrderT], object],
    decline: Callable[[web.Request, OrderT], object],
    answer: Callable[[OrderT], Mapping[str, object]],
    error: type[ErrorT],
    message: Callable[[ErrorT], str],
    missing: str = "no order has this code",
) -> list[web.RouteDef]:
    """`POST /sim/buyer/pay` and `POST /sim/buyer/decline`.

    `find` returns the order a code belongs to, `None` (answered 404 with `missing`) or a
    ready control-plane answer; `pay`/`decline` raise the channel's `error` when the order
    cannot be paid or declined (answered 409 with `message(exc)`); `answer` is the JSON shown.
    """

    async def located(request: web.Request) -> OrderT | web.Response:
        data = await read_json_object(request)
        if isinstance(data, web.Response):
            return data
        code = data.get("code")
        if not isinstance(code, str) or not code:
            return control_error(400, "code: required string", "code")
        found = find(request, code)
        if found is None:
            return control_error(404, missing, "code")
        return found

    def acting(
        act: Callable[[web.Request, OrderT], object],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            order = await located(request)
            if isinstance(order, web.Response):
                return order
            try:
                act(request, order)
            except error as exc:
                return control_error(409, message(exc))
            return web.json_response(dict(answer(order)))

        return handler

    return [
        web.post("/sim/buyer/pay", acting(pay)),
        web.post("/sim/buyer/decline", acting(decline)),
    ]
