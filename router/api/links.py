"""Payment links: the merchant's routes and the buyer's scan.

    POST /v1/payment_links                {amount?, currency?, description, return_url?}
    GET  /v1/payment_links                the merchant's links, newest first (limit)
    GET  /v1/payment_links/{id}
    POST /v1/payment_links/{id}/disable
    GET  /l/{id}                          a fixed amount: 303 to a new checkout's page;
                                          an entered amount: the form
    POST /l/{id}                          the form's amount, checked here: 303 to the checkout

A link object: `{"id", "object": "payment_link", "url", "qr_code", "amount" (null: the buyer
enters it), "currency", "description", "return_url", "active", "payments" (checkouts made
from it), "created_at", "livemode"}`; `url` and `qr_code` are `PAYROUTER_PUBLIC_URL/l/{id}`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from router.api.checkout import html_page, message_page
from router.api.limits import headers as limit_headers
from router.api.middleware import RUNTIME, json_response, parse_body, principal
from router.api.payments import query_params
from router.checkout import pages
from router.clock import from_ms
from router.domain_errors import InvalidField, NotFound, RiskDeclined
from router.models import Amount, Limit, Url
from router.payments.links import LinkService
from router.risk.rules import RiskRequest
from router.store.links import PaymentLink as StoredLink

LINKS = web.AppKey("links", LinkService)


class CreateLinkRequest(BaseModel):
    """`POST /v1/payment_links`."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount | None = Field(
        default=None, description="Fixed amount in minor units; absent: the buyer enters it."
    )
    currency: Annotated[StrictStr, Field(pattern=r"^CNY$")] = "CNY"
    description: Annotated[StrictStr, Field(min_length=1, max_length=127)]
    return_url: Url | None = None


class PaymentLink(BaseModel):
    """A payment link: a shop's permanent code; each scan of `url` is a new checkout."""

    id: str
    object: Literal["payment_link"] = "payment_link"
    url: str = Field(description="`PAYROUTER_PUBLIC_URL/l/{id}`: the page a buyer scans.")
    qr_code: str = Field(description="What to draw as the QR code (the same as `url`).")
    amount: int | None = Field(description="Minor units; null: the buyer enters the amount.")
    currency: str
    description: str
    return_url: str | None = None
    active: bool
    payments: int = Field(description="Checkout payments made from the link so far.")
    created_at: str
    livemode: bool


class PaymentLinkList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PaymentLink]
    has_more: bool
    url: str = "/v1/payment_links"


class LinkListQuery(BaseModel):
    """Query parameters of `GET /v1/payment_links`."""

    model_config = ConfigDict(extra="forbid")

    limit: Limit = 10


def _object(request: web.Request, link: StoredLink) -> PaymentLink:
    url = f"{request.app[RUNTIME].settings.base_url}/l/{link.id}"
    return PaymentLink(
        id=link.id,
        url=url,
        qr_code=url,
        amount=link.amount,
        currency=link.currency,
        description=link.description,
        return_url=link.return_url,
        active=link.active,
        payments=link.payments,
        created_at=link.created_at,
        livemode=link.livemode,
    )


async def create_link(request: web.Request) -> web.Response:
    who = principal(request)
    req = await parse_body(request, CreateLinkRequest)
    link = await request.app[LINKS].create(
        who.merchant.id,
        who.livemode,
        amount=req.amount,
        currency=req.currency,
        description=req.description,
        return_url=req.return_url,
    )
    return json_response(_object(request, link), status=201)


async def list_links(request: web.Request) -> web.Response:
    mch = principal(request).merchant.id
    query = query_params(request, LinkListQuery)
    links, has_more = await request.app[LINKS].store.page(mch, query.limit)
    data = [_object(request, link) for link in links if link.merchant_id == mch]
    return json_response(PaymentLinkList(data=data, has_more=has_more))


async def get_link(request: web.Request) -> web.Response:
    mch = principal(request).merchant.id
    link = await request.app[LINKS].get(mch, request.match_info["id"])
    return json_response(_object(request, link))


async def disable_link(request: web.Request) -> web.Response:
    mch = principal(request).merchant.id
    link = await request.app[LINKS].disable(mch, request.match_info["id"])
    return json_response(_object(request, link))


async def scan(request: web.Request) -> web.StreamResponse:
    """A buyer scanned the link (GET) or sent the amount form (POST)."""
    service = request.app[LINKS]
    lang = pages.language(request.headers.get("Accept-Language", ""), request.query.get("lang"))
    try:
        link = await service.find(request.match_info["id"])
    except NotFound:
        return message_page(request, "not_found", 404)
    if not link.active:
        return message_page(request, "link_disabled", 410)
    entered: str | None = None
    if request.method == "POST":
        form = await request.post()
        value = form.get("amount")
        entered = value if isinstance(value, str) else ""
    elif link.amount is None:
        return await _form(request, link, lang, None, None)
    try:
        amount = service.amount_of(link, entered)
    except InvalidField as exc:
        if exc.param != "amount":
            raise
        return await _form(request, link, lang, entered, pages.STRINGS[lang]["amount_invalid"])
    rt = request.app[RUNTIME]
    screen = await rt.risk.screen_scan(link.id, _scan_request(request, link, amount))
    if screen.taken is not None and not screen.taken.allowed:
        page = message_page(request, "too_many", 429)
        page.headers.update(limit_headers(screen.taken))
        page.headers["Retry-After"] = str(max(1, math.ceil(screen.taken.retry_ms / 1000)))
        return page
    try:
        stored = await service.pay(link, amount, screen.verdict)
    except RiskDeclined:
        return message_page(request, "declined", 402)
    raise web.HTTPSeeOther(f"/pay/{stored.payment.id}")


def _scan_request(request: web.Request, link: StoredLink, amount: int) -> RiskRequest:
    """What the risk rules see of a scan: the checkout it makes, from the scanning address."""
    return RiskRequest(
        merchant=link.merchant_id,
        amount=amount,
        currency=link.currency,
        method="checkout",
        wallet=None,
        channel=None,
        livemode=link.livemode,
        metadata={"payment_link": link.id},
        ip=request.remote,
        payer=None,
        now=from_ms(request.app[RUNTIME].clock.now_ms()),
    )


async def _form(
    request: web.Request, link: StoredLink, lang: str, entered: str | None, error: str | None
) -> web.Response:
    merchant = await request.app[RUNTIME].store.merchants.get(link.merchant_id)
    text = pages.render(
        "link.html",
        lang,
        merchant=merchant.name if merchant else "",
        description=link.description,
        action=f"/l/{link.id}",
        entered=entered,
        error=error,
    )
    # The form's answer redirects on to the checkout and, in a wallet's app, to the wallet's
    # cashier: the CSP's form-action covers redirects, so it names every account's host.
    accounts = request.app[RUNTIME].config.config.accounts.values()
    origins = sorted({_origin(account.base_url) for account in accounts})
    return html_page(text, 400 if error else 200, form_origins=tuple(origins))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def add_routes(app: web.Application, service: LinkService) -> None:
    app[LINKS] = service
    app.router.add_post("/v1/payment_links", create_link)
    app.router.add_get("/v1/payment_links", list_links)
    app.router.add_get("/v1/payment_links/{id}", get_link)
    app.router.add_post("/v1/payment_links/{id}/disable", disable_link)
    app.router.add_get("/l/{id}", scan)
    app.router.add_post("/l/{id}", scan)
