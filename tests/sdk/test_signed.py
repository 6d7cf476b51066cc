"""Signed requests (X-Payrouter-* headers) against a live router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest

from payrouter_sdk import AsyncClient, AuthenticationError
from router.api.middleware import RUNTIME
from tests.e2e.conftest import Router
from tests.sdk.conftest import create_qr


@pytest.fixture
async def signed(router: Router) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        api_key=router.secret, base_url=router.url, signing_key_id=router.key_id
    ) as client:
        yield client


async def test_signed_create_get_and_list(signed: AsyncClient) -> None:
    created = await create_qr(signed, metadata={"note": "signed + query"})
    assert (await signed.payments.get(created.id)).id == created.id
    # The query string is signed as sent: "+" and ":" in the time are percent-encoded.
    beijing = timezone(timedelta(hours=8))
    since = datetime.now(beijing).replace(microsecond=0) - timedelta(minutes=1)
    found = await signed.payments.list(
        merchant_order_id=created.merchant_order_id, created_gte=since, limit=5
    )
    assert [p.id for p in found.data] == [created.id]
    closed = await signed.payments.close(created.id)
    assert closed.status == "closed"


async def test_wrong_secret_is_refused(router: Router) -> None:
    async with AsyncClient(
        api_key="sk_test_wrong", base_url=router.url, signing_key_id=router.key_id
    ) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.payments.list()
    assert (caught.value.code, caught.value.param) == ("invalid_signature", "X-Payrouter-Signature")


async def test_merchant_that_requires_signatures(router: Router) -> None:
    merchants = router.app[RUNTIME].store.merchants
    _, issued = await merchants.create("Strict shop", require_signed=True)
    async with AsyncClient(api_key=issued.secret, base_url=router.url) as bearer:
        with pytest.raises(AuthenticationError) as caught:
            await bearer.payments.list()
    assert caught.value.code == "signature_required"
    async with AsyncClient(
        api_key=issued.secret, base_url=router.url, signing_key_id=issued.key.id
    ) as client:
        created = await create_qr(client)
        assert (await client.payments.list()).data[0].id == created.id
