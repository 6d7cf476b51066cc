"""The buyer's routes: the hosted checkout page, its status, its return and the QR images.

    GET       /pay/{id}            the page (in a wallet's app: that wallet's payment)
    GET       /pay/{id}/status     {"status", "expires_at", "return_url"} for the page's script
    GET|POST  /pay/{id}/return     where a wallet's cashier sends the buyer back: 303 to the page
    GET       /pay/{id}/qr.svg     QR image: a checkout's page URL, or a payment's QR string
    GET       /pay/{id}/qr.png
    GET       /assets/...          the pages' script and style sheet

No authentication: a payment id is unguessable, and the page shows the buyer only what a
cashier shows (merchant, description, amount, status). Pages carry a strict CSP
(`router.checkout.pages.csp`). Domain errors become a page the buyer can read, not JSON.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from channels.base import Wallet
from channels.errors import ChannelError
from channels.registry import REGISTRY
from router.api.middleware import RUNTIME
from router.checkout import pages, qr
from router.checkout.agent import wallet_of
from router.domain_errors import DomainError, NotFound, RiskDeclined, StateConflict
from router.ids import PAYMENT_ID
from router.payments.checkout import Buyer, CheckoutService, page_url
from router.store.payments import StoredPayment

log = logging.getLogger("payrouter.checkout")
CHECKOUT = web.AppKey("checkout", CheckoutService)
STATIC = Path(__file__).resolve().parent.parent / "checkout" / "static"


def _lang(request: web.Request) -> str:
    return pages.language(request.headers.get("Accept-Language", ""), request.query.get("lang"))


def html_page(text: str, status: int = 200, form_origins: tuple[str, ...] = ()) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = pages.csp(form_origins)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def message_page(request: web.Request, key: str, status: int) -> web.Response:
    """A page saying one thing (`pages.STRINGS[lang][key]`)."""
    lang = _lang(request)
    text = pages.render("message.html", lang, merchant="", message=pages.STRINGS[lang][key])
    return html_page(text, status)


async def _checkout(request: web.Request) -> StoredPayment:
    pay_id = request.match_info["id"]
    if not PAYMENT_ID.fullmatch(pay_id):
        raise NotFound("payment", pay_id)
    return await request.app[CHECKOUT].find(pay_id)


def _shown_status(request: web.Request, stored: StoredPayment) -> str:
    """`expired` for a checkout past its time that is not paid; the status otherwise."""
    p = stored.payment
    if p.status in ("pending", "closed") and p.expires_at is not None:
        now = request.app[RUNTIME].clock.now()
        if now >= datetime.fromisoformat(p.expires_at).timestamp():
            return "expired"
    return p.status


async def pay_page(request: web.Request) -> web.StreamResponse:
    try:
        stored = await _checkout(request)
    except NotFound:
        return message_page(request, "not_found", 404)
    lang = _lang(request)
    notice: str | None = None
    wallet = wallet_of(request.headers.get("User-Agent", ""))
    if wallet is not None and _shown_status(request, stored) == "pending":
        try:
            stored = await _in_wallet(request, stored, wallet)
        except StateConflict:
            notice = pages.STRINGS[lang]["other_wallet"]
        except RiskDeclined:
            notice = pages.STRINGS[lang]["declined"]
            stored = await request.app[CHECKOUT].find(stored.payment.id)
        except (DomainError, ChannelError) as exc:
            log.warning("checkout %s in %s could not start: %s", stored.payment.id, wallet, exc)
            notice = pages.STRINGS[lang]["unavailable"]
            stored = await request.app[CHECKOUT].find(stored.payment.id)
    return await _render_pay(request, stored, lang, wallet, notice)


async def _in_wallet(request: web.Request, stored: StoredPayment, wallet: Wallet) -> StoredPayment:
    """Route the checkout for the buyer's wallet (after the wallet's authorisation, where its
    payment needs the buyer's id). Raises `web.HTTPFound` to send the browser on."""
    service = request.app[CHECKOUT]
    spec = REGISTRY[wallet]
    assert spec.in_app is not None
    p = stored.payment
    url = page_url(service.rt, p.id)
    payer_id = None
    if spec.in_app.identifies_payer and p.channel is None:
        channel = await service.identity_channel(stored, spec.wallet)
        code = request.query.get("code")
        if not code or request.query.get("state") != p.id:
            raise web.HTTPFound(channel.payer_authorization_url(url, p.id))
        payer_id = await channel.payer_id(code)
    buyer = Buyer(wallet=spec.wallet, client_ip=request.remote or "127.0.0.1", payer_id=payer_id)
    stored = await service.attach(stored, buyer, return_url=f"{url}/return")
    action = stored.buyer_action or {}
    returned = "returned" in request.query
    if action.get("type") == "redirect" and stored.payment.status == "pending" and not returned:
        raise web.HTTPFound(str(action["url"]))
    return stored


async def _render_pay(
    request: web.Request,
    stored: StoredPayment,
    lang: str,
    wallet: Wallet | None,
    notice: str | None,
) -> web.Response:
    rt = request.app[RUNTIME]
    p = stored.payment
    merchant = await rt.store.merchants.get(stored.merchant_id)
    status = _shown_status(request, stored)
    values: dict[str, object] = {
        "merchant": merchant.name if merchant else "",
        "description": p.description,
        "amount": pages.money(p.amount, p.currency),
        "merchant_order_id": p.merchant_order_id,
        "status": status,
        "expires_at": p.expires_at,
        "status_url": f"/pay/{p.id}/status",
        "qr_url": f"/pay/{p.id}/qr.svg",
        "return_url": p.return_url,
        "message": notice,
        "mode": "qr",
        "pay_label": pages.STRINGS[lang]["pay"],
    }
    origins: tuple[str, ...] = ()
    action = stored.buyer_action if wallet is not None and wallet == p.wallet else None
    if action is not None and notice is None:
        spec = REGISTRY[p.wallet] if p.wallet else None
        name = ""
        if spec is not None:
            zh = spec.in_app.label_zh if spec.in_app is not None else ""
            name = zh if lang == "zh" and zh else spec.name
        values["pay_label"] = pages.STRINGS[lang]["pay_with"].format(wallet=name)
        kind = action.get("type")
        if kind == "app_params":
            values |= {"mode": "wallet_params", "params": action.get("params") or {}}
            values["sandbox_url"] = _sandbox_confirm(request, stored)
        elif kind == "form_post":
            form_url = str(action.get("url"))
            parts = urlsplit(form_url)
            origins = (f"{parts.scheme}://{parts.netloc}",)
            values |= {
                "mode": "form_post",
                "form_url": form_url,
                "form_fields": action.get("fields") or {},
                # Back from the cashier: the page waits for the status instead.
                "autosubmit": "returned" not in request.query,
            }
        elif kind == "redirect":
            values |= {"mode": "redirect", "redirect_url": str(action.get("url"))}
    elif wallet is not None:
        values["mode"] = "none"
    return html_page(pages.render("pay.html", lang, **values), form_origins=origins)


def _sandbox_confirm(request: web.Request, stored: StoredPayment) -> str | None:
    """In the sandbox, the simulator's in-app confirm screen (no WeChat around the page)."""
    p = stored.payment
    if p.livemode or p.channel is None or p.wallet is None or stored.buyer_action is None:
        return None
    in_app = REGISTRY[p.wallet].in_app
    account = request.app[RUNTIME].config.config.accounts.get(p.channel)
    params = stored.buyer_action.get("params") or {}
    if in_app is None or in_app.sandbox_sheet is None or account is None:
        return None
    query = urlencode(
        {"package": params.get("package", ""), "redirect_url": page_url_of(request, p.id)}
    )
    return f"{account.base_url}{in_app.sandbox_sheet}?{query}"


def page_url_of(request: web.Request, pay_id: str) -> str:
    return page_url(request.app[RUNTIME], pay_id)


async def pay_status(request: web.Request) -> web.Response:
    stored = await _checkout(request)
    p = stored.payment
    body = {
        "status": _shown_status(request, stored),
        "expires_at": p.expires_at,
        "return_url": p.return_url,
    }
    response = web.json_response(body)
    response.headers["Cache-Control"] = "no-store"
    return response


async def pay_return(request: web.Request) -> web.Response:
    """A wallet's cashier hands the buyer back (UnionPay posts its front notification here):
    nothing in it is trusted. The router asks the channel itself (the notification may not
    have come yet), then shows the page, which does not send the buyer to the cashier again."""
    stored = await _checkout(request)
    await request.app[CHECKOUT].refresh(stored)
    raise web.HTTPSeeOther(f"/pay/{stored.payment.id}?returned=1")


async def _qr_text(request: web.Request) -> str:
    pay_id = request.match_info["id"]
    if not PAYMENT_ID.fullmatch(pay_id):
        raise NotFound("payment", pay_id)
    stored = await request.app[RUNTIME].store.payments.find(pay_id)
    if stored is None:
        raise NotFound("payment", pay_id)
    p = stored.payment
    if p.method == "checkout":
        return page_url(request.app[RUNTIME], p.id)
    if p.action is None or not p.action.qr_code or p.status != "pending":
        raise NotFound("qr_code", pay_id)
    return p.action.qr_code


async def qr_svg(request: web.Request) -> web.Response:
    body = qr.svg(await _qr_text(request))
    return web.Response(body=body, content_type="image/svg+xml", headers=_QR_HEADERS)


async def qr_png(request: web.Request) -> web.Response:
    body = qr.png(await _qr_text(request))
    return web.Response(body=body, content_type="image/png", headers=_QR_HEADERS)


_QR_HEADERS = {"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"}


async def favicon(request: web.Request) -> web.FileResponse:
    """Browsers ask every page's host for one; a missing one is an error in their console."""
    return web.FileResponse(STATIC / "icon.svg", headers={"Content-Type": "image/svg+xml"})


def add_routes(app: web.Application, service: CheckoutService) -> None:
    app[CHECKOUT] = service
    app.router.add_static("/assets", STATIC, append_version=False)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/pay/{id}", pay_page)
    app.router.add_get("/pay/{id}/status", pay_status)
    app.router.add_get("/pay/{id}/return", pay_return)
    app.router.add_post("/pay/{id}/return", pay_return)
    app.router.add_get("/pay/{id}/qr.svg", qr_svg)
    app.router.add_get("/pay/{id}/qr.png", qr_png)
