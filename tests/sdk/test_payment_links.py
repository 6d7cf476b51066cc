"""Payment links through the SDK, against a live router."""

from __future__ import annotations

import pytest

from payrouter_sdk import AsyncClient, InvalidRequestError, NotFoundError, PaymentLink


async def test_a_link_is_made_read_listed_and_disabled(client: AsyncClient) -> None:
    fixed = await client.payment_links.create(description="Tea", amount=1200)
    entered = await client.payment_links.create(description="Tips")
    assert isinstance(fixed, PaymentLink)
    assert (fixed.amount, fixed.currency, fixed.active, fixed.payments) == (1200, "CNY", True, 0)
    assert fixed.url.endswith(f"/l/{fixed.id}") and fixed.qr_code == fixed.url
    assert entered.amount is None

    assert await client.payment_links.get(fixed.id) == fixed
    listed = await client.payment_links.list(limit=10)
    assert [link.id for link in listed.data[:2]] == [entered.id, fixed.id]

    disabled = await client.payment_links.disable(fixed.id)
    assert disabled.active is False
    assert (await client.payment_links.get(fixed.id)).active is False


async def test_bad_links_are_refused_naming_the_field(client: AsyncClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await client.payment_links.create(description="", amount=100)
    assert caught.value.param == "description"
    with pytest.raises(NotFoundError):
        await client.payment_links.get("plink_missing")
