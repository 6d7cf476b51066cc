"""Merchants in the store: what they accept, changing them, the secret key they are sealed
under, and `payrouter dev`'s sandbox merchant (on a real redis-server and on the embedded
store)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from router.cli.dev import FILE_NAME, sandbox_merchant
from router.clock import FrozenClock
from router.settings import ConfigurationError
from router.store import Store, open_store
from router.store.merchants import KEEP


@pytest.mark.parametrize(
    ("name", "notify_url", "mode", "fragment"),
    [
        ("", None, "test", "name must not be empty"),
        ("  ", None, "test", "name must not be empty"),
        ("a\tb", None, "test", "name must not contain control characters"),
        ("Shop", "foo", "test", "notify_url must be an http or https URL"),
        ("Shop", "http://[/hook", "test", "notify_url is not a valid URL"),
        (
            "Shop",
            "http://93.184.216.34/h",
            "live",
            "notify_url live-mode webhook URLs must use https",
        ),
        ("Shop", "https://192.168.1.1/h", "live", "not a public address"),
    ],
)
async def test_create_refuses_bad_fields(
    store: Store, name: str, notify_url: str | None, mode: str, fragment: str
) -> None:
    if mode == "live" and store.embedded:
        pytest.skip("the embedded store issues test keys only")
    with pytest.raises(ValueError, match=fragment):
        await store.merchants.create(name, notify_url=notify_url, mode=mode)  # type: ignore[arg-type]
    assert await store.merchants.all() == []


async def test_update_changes_and_clears_the_default_endpoint(store: Store) -> None:
    merchant, _ = await store.merchants.create("Shop")
    updated = await store.merchants.update(merchant.id, notify_url="https://shop.example/h")
    assert updated is not None
    assert updated.notify_url == "https://shop.example/h"
    assert (await store.merchants.get(merchant.id)) == updated

    with pytest.raises(ValueError, match="notify_url"):
        await store.merchants.update(merchant.id, notify_url="foo")
    assert (await store.merchants.get(merchant.id)) == updated

    cleared = await store.merchants.update(merchant.id, notify_url=None, require_signed=True)
    assert cleared is not None
    assert cleared.notify_url is None
    assert cleared.require_signed
    kept = await store.merchants.update(merchant.id, notify_url=KEEP, require_signed=KEEP)
    assert kept == cleared
    assert await store.merchants.update("mch_nobody00000000", notify_url=None) is None


async def test_live_merchant_endpoint_must_pass_live_checks(redis_url: str) -> None:
    store = await open_store(redis_url, FrozenClock())
    try:
        merchant, _ = await store.merchants.create("Shop", notify_url="http://127.0.0.1:9/h")
        with pytest.raises(ValueError, match="live events"):
            await store.merchants.rotate(merchant.id, "live", 0)
        await store.merchants.update(merchant.id, notify_url="https://93.184.216.34/h")
        await store.merchants.rotate(merchant.id, "live", 0)
        assert await store.merchants.has_live_key(merchant.id)
        with pytest.raises(ValueError, match="https"):
            await store.merchants.update(merchant.id, notify_url="http://127.0.0.1:9/h")
    finally:
        await store.close()


@pytest.mark.parametrize("grace", [-5, 31 * 86400])
async def test_grace_out_of_range(store: Store, grace: int) -> None:
    merchant, issued = await store.merchants.create("Shop")
    with pytest.raises(ValueError, match="grace"):
        await store.merchants.rotate(merchant.id, "test", grace)
    with pytest.raises(ValueError, match="grace"):
        await store.merchants.rotate_webhook_secret(merchant.id, grace)
    assert [k.id for k in await store.merchants.keys_of(merchant.id)] == [issued.key.id]


async def test_store_refuses_a_secret_key_that_does_not_open_it(redis_url: str) -> None:
    first, other = b"1" * 32, b"2" * 32
    store = await open_store(redis_url, FrozenClock(), first)
    await store.merchants.create("Shop")
    await store.close()
    for key, fragment in ((other, "is not the key"), (None, "is not set")):
        with pytest.raises(ConfigurationError, match=fragment) as caught:
            await open_store(redis_url, FrozenClock(), key)
        assert base64.b64encode(first).decode() not in caught.value.line()
    again = await open_store(redis_url, FrozenClock(), first)
    await again.close()


async def test_store_without_a_key_keeps_opening_its_own(redis_url: str) -> None:
    for _ in range(2):
        store = await open_store(redis_url, FrozenClock())
        await store.merchants.create("Shop")
        await store.close()
    with pytest.raises(ConfigurationError, match="sealed while it was unset"):
        await open_store(redis_url, FrozenClock(), b"1" * 32)


async def test_dev_sandbox_merchant_is_kept(store: Store, tmp_path: Path) -> None:
    first = await sandbox_merchant(store, tmp_path)
    assert first.secret.startswith("sk_test_")
    assert first.webhook_secret.startswith("whsec_")
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600
    again = await sandbox_merchant(store, tmp_path)
    assert again == first
    assert [m.id for m in await store.merchants.all()] == [first.merchant_id]


async def test_dev_sandbox_merchant_is_restored_in_an_empty_store(
    tmp_path: Path, clock: FrozenClock
) -> None:
    stores = [await open_store(None, clock) for _ in range(2)]
    try:
        first = await sandbox_merchant(stores[0], tmp_path)
        restored = await sandbox_merchant(stores[1], tmp_path)
        assert (restored.merchant_id, restored.secret, restored.webhook_secret) == (
            first.merchant_id,
            first.secret,
            first.webhook_secret,
        )
        key = await stores[1].merchants.key_for_secret(first.secret)
        assert key is not None
        assert key.merchant_id == first.merchant_id
        assert await stores[1].merchants.webhook_secrets(first.merchant_id) == [
            first.webhook_secret
        ]
    finally:
        for store in stores:
            await store.close()


async def test_dev_sandbox_merchant_after_its_key_was_rotated_away(
    store: Store, tmp_path: Path, clock: FrozenClock
) -> None:
    first = await sandbox_merchant(store, tmp_path)
    await store.merchants.rotate(first.merchant_id, "test", 0)
    clock.advance(1)
    again = await sandbox_merchant(store, tmp_path)
    assert again.merchant_id == first.merchant_id
    assert again.secret != first.secret
    key = await store.merchants.key_for_secret(again.secret)
    assert key is not None
    assert store.merchants.works(key, first.merchant_id, "test")
    assert (await sandbox_merchant(store, tmp_path)) == again


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("merchant_id", "not-a-merchant"),
        ("merchant_id", "mch_0123456789\n"),
        ("secret", "sk_live_0123456789abcdef0123"),
        ("secret", ""),
        ("webhook_secret", "whsec_not base64!"),
        ("webhook_secret", "secret"),
        ("key_id", "key_../x"),
    ],
)
async def test_dev_sandbox_file_edited_into_nonsense_is_replaced(
    store: Store, tmp_path: Path, field: str, value: str
) -> None:
    """`payrouter dev` starts whatever its credentials file holds: fields that are not what it
    writes are not restored into the store (which would refuse them, or keep an unusable
    webhook secret), new credentials are made and saved instead."""
    first = await sandbox_merchant(store, tmp_path)
    path = tmp_path / FILE_NAME
    saved = json.loads(path.read_text())
    path.write_text(json.dumps(saved | {field: value}))
    again = await sandbox_merchant(store, tmp_path)
    assert getattr(again, field) != value
    assert again.secret.startswith("sk_test_")
    assert again.webhook_secret.startswith("whsec_")
    assert base64.b64decode(again.webhook_secret.removeprefix("whsec_"), validate=True)
    assert json.loads(path.read_text())[field] == getattr(again, field)
    key = await store.merchants.key_for_secret(again.secret)
    assert key is not None and store.merchants.works(key, again.merchant_id, "test")
    assert again.webhook_secret in await store.merchants.webhook_secrets(again.merchant_id)
    assert first.merchant_id in {m.id for m in await store.merchants.all()}
