"""The hosted checkout in a real browser: each wallet's app end to end, the desktop QR,
expiry, hostile text, and no console errors anywhere."""

from __future__ import annotations

import io
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Browser

from tests.checkout.conftest import open_page, snap
from tests.e2e.conftest import Router

pytestmark = pytest.mark.browser


async def checkout(router: Router, **fields: Any) -> dict[str, Any]:
    body = {
        "method": "checkout",
        "amount": 1999,
        "description": "Oolong tea 乌龙茶",
        "return_url": f"{router.url}/healthz",
    } | fields
    status, created = await router.create(**body)
    assert status == 201, created
    return created


@pytest.mark.parametrize("wallet", ["wechat", "alipay", "unionpay"])
async def test_each_wallet_pays_the_checkout_in_its_app(
    multi: Router, browser: Browser, wallet: str
) -> None:
    created = await checkout(multi)
    assert created["status"] == "pending"
    assert "channel" not in created or created["channel"] is None
    url = created["action"]["url"]
    assert url == created["action"]["qr_code"] == f"{multi.url}/pay/{created['id']}"

    w = await open_page(browser, wallet)
    await w.page.goto(url)
    if wallet == "wechat":
        # Back from WeChat's authorisation with a code: the page offers WeChat's pay sheet.
        assert "code=" in w.page.url
        await w.page.wait_for_load_state("load")
        await snap(w, "checkout-wechat")
        await w.page.click("#pay")
    # The wallet's own screen (the simulator's), in Chinese as the real one is.
    await w.page.wait_for_selector("button#pay:has-text('确认付款')")
    await w.page.wait_for_load_state("load")
    await snap(w, f"sim-{wallet}")
    await w.page.click("#pay")
    await w.page.wait_for_url(f"{multi.url}/healthz", timeout=15_000)

    paid = await multi.payment(created["id"])
    assert paid["status"] == "succeeded"
    assert paid["wallet"] == wallet
    assert paid["channel"] == f"{wallet}_main"
    assert w.errors == []
    await w.context.close()


async def test_desktop_page_shows_a_qr_code_of_itself_and_turns_paid(
    multi: Router, browser: Browser
) -> None:
    created = await checkout(multi, amount=1234)
    w = await open_page(browser, "desktop", lang="en-US")
    await w.page.goto(created["action"]["url"])
    assert await w.page.inner_text("#amount") == "¥12.34"
    assert await w.page.inner_text("#merchant") == "Shop"
    assert await w.page.inner_text("#status") == "Waiting for payment"
    await w.page.wait_for_function("document.getElementById('time-left').textContent !== '--:--'")

    shot = await w.page.locator("#qr").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))
    await snap(w, "checkout-desktop")
    assert [b.text for b in found] == [created["action"]["url"]]

    # The buyer scans it with Alipay, pays there; this page notices by itself.
    phone = await open_page(browser, "alipay")
    await phone.page.goto(created["action"]["url"])
    await phone.page.wait_for_load_state("load")
    await phone.page.click("#pay")
    await w.page.wait_for_selector("#status[data-status=succeeded]")
    await snap(w, "checkout-paid")
    await w.page.wait_for_url(f"{multi.url}/healthz", timeout=15_000)
    assert w.errors == [] and phone.errors == []
    await w.context.close()
    await phone.context.close()


async def test_an_expired_checkout_says_so(multi: Router, browser: Browser) -> None:
    created = await checkout(multi, expires_in=60)
    multi.clock.advance(61)
    closed = await multi.wait_status(created["id"], "closed")
    assert closed["channel"] is None
    w = await open_page(browser, "wechat")
    await w.page.goto(created["action"]["url"])
    assert await w.page.inner_text("#status") == "已过期"
    await snap(w, "checkout-expired")
    assert await w.page.locator("#pay").count() == 0
    assert w.errors == []
    await w.context.close()


HOSTILE = "</script><script>alert(1)</script>\"'><img src=x onerror=alert(2)>{{7*7}}"


async def test_hostile_text_is_shown_as_text(multi: Router, browser: Browser) -> None:
    created = await checkout(multi, description=HOSTILE[:127], return_url=None)
    w = await open_page(browser, "desktop")
    response = await w.page.goto(created["action"]["url"])
    assert response is not None
    assert "script-src 'self'" in (await response.all_headers())["content-security-policy"]
    assert await w.page.inner_text("#description") == HOSTILE[:127]
    assert await w.page.locator("img[src=x]").count() == 0
    assert w.errors == []
    await w.context.close()


async def test_a_payment_link_paid_twice_makes_two_payments(
    multi: Router, browser: Browser
) -> None:
    status, link, _ = await multi.request(
        "POST",
        "/v1/payment_links",
        json={"description": "Counter 收银台", "return_url": f"{multi.url}/healthz"},
    )
    assert status == 201, link
    assert link["url"] == link["qr_code"] == f"{multi.url}/l/{link['id']}"
    w = await open_page(browser, "alipay")
    # The buyer types an amount the server refuses, then a good one.
    await w.page.goto(link["url"])
    await w.page.fill("#amount", "12.345")
    await w.page.evaluate("document.getElementById('link-form').noValidate = true")
    await w.page.click("button[type=submit]")
    assert await w.page.inner_text("#notice") == "请输入有效金额"
    await snap(w, "link-amount")
    # The refused form is a 400, which Chromium notes in the console; nothing else may be.
    assert [e for e in w.errors if "400" not in e] == []
    w.errors.clear()
    for entered in ("12.30", "0.5"):
        await w.page.goto(link["url"])
        await w.page.fill("#amount", entered)
        await w.page.click("button[type=submit]")
        await w.page.wait_for_selector("button#pay:has-text('确认付款')")
        await w.page.wait_for_load_state("load")
        await w.page.click("#pay")
        await w.page.wait_for_url(f"{multi.url}/healthz", timeout=15_000)
    status, listed, _ = await multi.request("GET", "/v1/payments?limit=10")
    made = [p for p in listed["data"] if p["metadata"].get("payment_link") == link["id"]]
    assert sorted(p["amount"] for p in made) == [50, 1230]
    assert {p["status"] for p in made} == {"succeeded"}
    status, counted, _ = await multi.request("GET", f"/v1/payment_links/{link['id']}")
    assert counted["payments"] == 2
    status, disabled, _ = await multi.request("POST", f"/v1/payment_links/{link['id']}/disable")
    assert disabled["active"] is False
    assert w.errors == []
    response = await w.page.goto(link["url"])
    assert response is not None and response.status == 410
    assert await w.page.inner_text("#message") == "该收款码已停用"
    await w.context.close()
