"""The checkout's HTTP surface without a browser: the merchant API's `checkout` method, the
buyer's JSON and images, payment links, and the WeChat simulator's web authorisation.
A real router and WeChat Pay simulator on loopback, real Redis."""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import zxingcpp
from PIL import Image

from channels.wechat.sim.oauth import sandbox_openid
from router.api.middleware import RUNTIME
from router.checkout.agent import wallet_of
from router.payments.links import parse_entered_amount
from tests.checkout.conftest import UA
from tests.e2e.conftest import Router, Simulator

HOSTILE = "</script><script>alert(1)</script>\"'><img src=x onerror=alert(2)>{{7*7}}&amp;"


async def checkout(router: Router, **fields: Any) -> dict[str, Any]:
    status, created = await router.create(method="checkout", **fields)
    assert status == 201, created
    return created


@pytest.mark.parametrize("field", ["wallet", "payer_id", "channel"])
async def test_checkout_refuses_what_the_buyer_s_app_decides(router: Router, field: str) -> None:
    value = {"wallet": "wechat", "payer_id": "o" * 28, "channel": "wechat_main"}[field]
    status, body = await router.create(method="checkout", **{field: value})
    assert status == 400
    assert body["error"]["param"] == field


async def test_a_checkout_waits_without_a_channel_and_closes_without_one(router: Router) -> None:
    created = await checkout(router)
    assert created["status"] == "pending"
    assert created["action"]["type"] == "redirect"
    assert "wallet" not in created or created["wallet"] is None
    status, refund, _ = await router.request(
        "POST", f"/v1/payments/{created['id']}/refunds", json={}
    )
    assert status == 409, refund
    assert await router.worker.check(router.merchant_id, created["id"]) == "checkout_waiting"
    status, closed, _ = await router.request("POST", f"/v1/payments/{created['id']}/close")
    assert status == 200, closed
    assert closed["status"] == "closed"
    async with router.http.get(f"{router.url}/pay/{created['id']}/status") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "closed"


async def test_qr_images_decode_to_the_page_and_to_a_payment_s_code(router: Router) -> None:
    created = await checkout(router)
    async with router.http.get(f"{router.url}/pay/{created['id']}/qr.png") as resp:
        assert resp.content_type == "image/png"
        image = Image.open(io.BytesIO(await resp.read()))
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [created["action"]["url"]]
    async with router.http.get(f"{router.url}/pay/{created['id']}/qr.svg") as resp:
        assert resp.content_type == "image/svg+xml"
        assert (await resp.text()).startswith("<svg")

    status, qr_payment = await router.create(method="qr")
    assert status == 201, qr_payment
    async with router.http.get(f"{router.url}/pay/{qr_payment['id']}/qr.png") as resp:
        image = Image.open(io.BytesIO(await resp.read()))
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [qr_payment["action"]["qr_code"]]
    for missing in ("pay_nothing", "pay_" + "x" * 24):
        async with router.http.get(f"{router.url}/pay/{missing}/qr.svg") as resp:
            assert resp.status == 404


async def test_pages_escape_hostile_merchant_names_and_descriptions(router: Router) -> None:
    merchants = router.app[RUNTIME].store.merchants
    _, issued = await merchants.create(HOSTILE)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    body = {"amount": 100, "merchant_order_id": "H1", "description": HOSTILE[:127]}
    async with router.http.post(
        f"{router.url}/v1/payments", json=body | {"method": "checkout"}, headers=headers
    ) as resp:
        created = await resp.json()
        assert resp.status == 201, created
    async with router.http.get(created["action"]["url"]) as resp:
        page = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page
    assert page.count("<script") == 1  # the one static script


async def test_payment_links_check_what_merchants_and_buyers_send(router: Router) -> None:
    status, bad, _ = await router.request(
        "POST", "/v1/payment_links", json={"description": "x", "amount": "12"}
    )
    assert status == 400 and bad["error"]["param"] == "amount"
    status, link, _ = await router.request(
        "POST", "/v1/payment_links", json={"description": "Fixed", "amount": 800}
    )
    assert status == 201, link
    status, listed, _ = await router.request("GET", "/v1/payment_links")
    assert [item["id"] for item in listed["data"]][:1] == [link["id"]]
    # A fixed link goes straight to a new checkout of its amount.
    async with router.http.get(link["url"], allow_redirects=False) as resp:
        assert resp.status == 303
        pay_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert (await router.payment(pay_id))["amount"] == 800

    status, open_link, _ = await router.request(
        "POST", "/v1/payment_links", json={"description": "Any amount"}
    )
    for entered in ("abc", "0", "1.234", "-5", "99999999999", ""):
        async with router.http.post(open_link["url"], data={"amount": entered}) as resp:
            assert resp.status == 400, entered
            assert 'id="notice"' in await resp.text()
    _, issued = await router.app[RUNTIME].store.merchants.create("Other")
    async with router.http.get(
        f"{router.url}/v1/payment_links/{link['id']}",
        headers={"Authorization": f"Bearer {issued.secret}"},
    ) as resp:
        assert resp.status == 404


@pytest.mark.parametrize(
    ("text", "fen"), [("12", 1200), ("12.3", 1230), ("0.01", 1), ("12.34", 1234)]
)
def test_entered_amounts(text: str, fen: int) -> None:
    assert parse_entered_amount(text) == fen


def test_the_wallet_is_told_by_the_user_agent() -> None:
    assert {wallet: wallet_of(agent) for wallet, agent in UA.items()} == {
        "wechat": "wechat",
        "alipay": "alipay",
        "unionpay": "unionpay",
        "desktop": None,
    }


async def test_wechat_authorisation_codes_are_single_use(
    simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    creds = simulator.sandbox.credentials
    query = {
        "appid": creds.appid,
        "redirect_uri": "http://127.0.0.1:1/back",
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "S1",
    }
    async with http.get(
        f"{simulator.url}/connect/oauth2/authorize", params=query, allow_redirects=False
    ) as resp:
        assert resp.status == 302
        back = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert back["state"] == ["S1"]
    token = {
        "appid": creds.appid,
        "secret": creds.oauth_secret(),
        "code": back["code"][0],
        "grant_type": "authorization_code",
    }
    url = f"{simulator.url}/sns/oauth2/access_token"
    async with http.get(url, params=token | {"secret": "wrong"}) as resp:
        assert (await resp.json())["errcode"] == 40125
    async with http.get(url, params=token) as resp:
        assert (await resp.json())["openid"] == sandbox_openid(creds.appid)
    async with http.get(url, params=token) as resp:
        assert (await resp.json())["errcode"] == 40029
    async with http.get(
        f"{simulator.url}/connect/oauth2/authorize", params=query | {"appid": "wx0000000000000000"}
    ) as resp:
        assert resp.status == 400


async def test_simulator_cashiers_run_no_inline_script(router: Router) -> None:
    status, h5 = await router.create(
        method="h5", client_ip="203.0.113.9", description=HOSTILE[:127]
    )
    assert status == 201, h5
    async with router.http.get(h5["action"]["url"]) as resp:
        page = await resp.text()
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == ['<script src="/sim/static/buyer.js" defer>']
    assert "<img src=x" not in page


async def test_the_pay_button_names_the_wallet_as_its_buyers_do(router: Router) -> None:
    created = await checkout(router)
    agent = {"User-Agent": UA["wechat"]}
    async with router.http.get(created["action"]["url"], headers=agent) as resp:
        # Through WeChat's authorisation (the simulator's) and back with a code.
        assert resp.history[0].headers["Location"].startswith(router.url) is False
        assert "code=" in str(resp.url)
        page = await resp.text()
    assert "使用微信支付" in page
    async with router.http.get(f"{resp.url}&lang=en", headers=agent) as resp:
        assert "Pay with WeChat Pay" in await resp.text()


async def test_a_forged_authorisation_code_starts_nothing(router: Router) -> None:
    created = await checkout(router)
    url = f"{created['action']['url']}?code=forged&state={created['id']}"
    async with router.http.get(url, headers={"User-Agent": UA["wechat"]}) as resp:
        assert resp.status == 200
        page = await resp.text()
    assert 'id="notice"' in page and 'id="pay"' not in page
    after = await router.payment(created["id"])
    assert after["status"] == "pending" and after.get("channel") is None
