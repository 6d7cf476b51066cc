"""What the simulators' statements hold beyond the orders, and the control plane to inject it.

Real statements contain what reconciliation must survive; a test puts it there through
`/sim/statement/...` (sandbox only):

    PUT  /sim/statement/fee_rate      {"rate_bp": 38}              the account's fee rate
    POST /sim/statement/coupon        {"order_no", "amount"}       a merchant-funded coupon
    POST /sim/statement/portal_refund {"order_no", "amount"}       a refund made in the portal
    POST /sim/statement/outside_order {"amount", "paid_at"?}       a paid order not made by us
    POST /sim/statement/paid_at       {"order_no", "paid_at"}      move a payment's time

`order_no` is the merchant order number as the channel holds it (`out_trade_no`, `orderId`);
`paid_at` is ISO 8601 with an offset; `rate_bp` is in hundredths of a percent (60 = 0.60%);
every body may name `account` (the channel-side merchant id; the sandbox's by default).
Each channel says how a payment is found, refunded, made or moved (`StatementHooks`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from aiohttp import web

from channels.sim.kit import control_error, read_json_object
from channels.sim.state import SimulatorCore

DEFAULT_FEE_BP = 60
"""0.60%, the usual rate of all three channels for online payments."""

SimT = TypeVar("SimT", bound=SimulatorCore[Any])
OrderT = TypeVar("OrderT")


def fee(fen: int, rate_bp: int) -> int:
    """The fee on `fen` at `rate_bp`, rounded half up to the fen, with the sign of `fen`."""
    units = (abs(fen) * rate_bp + 5000) // 10000
    return units if fen >= 0 else -units


@dataclass
class Knobs:
    """A simulator's statement settings: fee rates per account, coupons per order."""

    fee_bp: dict[str, int] = field(default_factory=dict)
    coupons: dict[tuple[str, str], int] = field(default_factory=dict)

    def rate_bp(self, account: str) -> int:
        return self.fee_bp.get(account, DEFAULT_FEE_BP)

    def coupon(self, account: str, order_no: str) -> int:
        return self.coupons.get((account, order_no), 0)


_KNOBS: weakref.WeakKeyDictionary[object, Knobs] = weakref.WeakKeyDictionary()


def knobs(sim: object) -> Knobs:
    """The statement settings of one running simulator (made on first use)."""
    found = _KNOBS.get(sim)
    if found is None:
        found = _KNOBS[sim] = Knobs()
    return found


@dataclass(frozen=True)
class StatementHooks(Generic[SimT, OrderT]):
    """How one channel's simulator finds, refunds, makes and moves payments."""

    find: Callable[[SimT, str, str], OrderT | None]
    """(sim, account, order_no) → a paid order, or None."""
    amount: Callable[[OrderT], int]
    portal_refund: Callable[[SimT, OrderT, int], Mapping[str, object]]
    """Refund at once, as the merchant portal does; answers the refund's numbers. Raises
    `ValueError` when the channel would refuse."""
    outside_order: Callable[[SimT, str, int, datetime | None], Mapping[str, object]]
    """(sim, account, amount, paid_at) → a paid order nobody asked us for, its numbers."""
    move_payment: Callable[[OrderT, datetime], None]


class _Refused(Exception):
    def __init__(self, status: int, message: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.answer = control_error(status, message, field_name)


def _int(data: Mapping[str, object], name: str, *, low: int = 1) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise _Refused(400, f"{name}: an integer of at least {low}", name)
    return value


def _text(data: Mapping[str, object], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise _Refused(400, f"{name}: required string", name)
    return value


def _moment(data: Mapping[str, object], name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_text(data, name))
    except ValueError:
        raise _Refused(400, f"{name}: ISO 8601 with an offset", name) from None
    if moment.tzinfo is None:
        raise _Refused(400, f"{name}: ISO 8601 with an offset", name)
    return moment


def statement_routes(
    sim_key: web.AppKey[SimT], hooks: StatementHooks[SimT, OrderT]
) -> list[web.RouteDef]:
    """The `/sim/statement/...` control routes for one channel's simulator."""

    async def body_of(request: web.Request) -> tuple[SimT, str, dict[str, object]]:
        data = await read_json_object(request)
        if isinstance(data, web.Response):
            raise _Refused(400, "body must be a JSON object")
        sim = request.app[sim_key]
        account = data.get("account")
        if account is None:
            account = sim.account_id(sim.default_account())
        if not isinstance(account, str) or account not in sim.accounts:
            raise _Refused(404, "no such account", "account")
        return sim, account, data

    def paid(sim: SimT, account: str, data: Mapping[str, object]) -> OrderT:
        order = hooks.find(sim, account, _text(data, "order_no"))
        if order is None:
            raise _Refused(404, "no paid order has this order_no", "order_no")
        return order

    async def fee_rate(sim: SimT, account: str, data: dict[str, object]) -> dict[str, object]:
        knobs(sim).fee_bp[account] = _int(data, "rate_bp", low=0)
        return {"account": account, "rate_bp": knobs(sim).rate_bp(account)}

    async def coupon(sim: SimT, account: str, data: dict[str, object]) -> dict[str, object]:
        order = paid(sim, account, data)
        amount = _int(data, "amount")
        if amount >= hooks.amount(order):
            raise _Refused(400, "amount: a coupon is less than the order", "amount")
        knobs(sim).coupons[(account, _text(data, "order_no"))] = amount
        return {"order_no": data["order_no"], "coupon": amount}

    async def portal_refund(sim: SimT, account: str, data: dict[str, object]) -> dict[str, object]:
        return dict(hooks.portal_refund(sim, paid(sim, account, data), _int(data, "amount")))

    async def outside_order(sim: SimT, account: str, data: dict[str, object]) -> dict[str, object]:
        when = _moment(data, "paid_at") if "paid_at" in data else None
        return dict(hooks.outside_order(sim, account, _int(data, "amount"), when))

    async def paid_at(sim: SimT, account: str, data: dict[str, object]) -> dict[str, object]:
        hooks.move_payment(paid(sim, account, data), _moment(data, "paid_at"))
        return {"order_no": data["order_no"], "paid_at": data["paid_at"]}

    def route(
        act: Callable[[SimT, str, dict[str, object]], Any],
    ) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            try:
                sim, account, data = await body_of(request)
                return web.json_response(await act(sim, account, data))
            except _Refused as exc:
                return exc.answer
            except (LookupError, ValueError) as exc:
                # The channel refuses (a refund above what is left, say): say why.
                return control_error(409, str(exc))

        return handler

    return [
        web.put("/sim/statement/fee_rate", route(fee_rate)),
        web.post("/sim/statement/coupon", route(coupon)),
        web.post("/sim/statement/portal_refund", route(portal_refund)),
        web.post("/sim/statement/outside_order", route(outside_order)),
        web.post("/sim/statement/paid_at", route(paid_at)),
    ]
