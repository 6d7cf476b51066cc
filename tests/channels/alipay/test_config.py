"""Alipay account config, credential loading and the sandbox files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError

from channels.alipay import AlipayAccount, AlipayChannel, AlipayCredentials, build, load_credentials
from channels.alipay.sandbox import (
    SANDBOX_APP_ID,
    alipay_key_path,
    credentials_path,
    ensure_sandbox,
)
from channels.base import METHODS, Channel
from channels.credentials import CredentialsError, CredentialsRef

FIXTURES = Path(__file__).parents[2] / "fixtures" / "alipay"


def account(**overrides: object) -> AlipayAccount:
    entry: dict[str, object] = {
        "type": "alipay",
        "base_url": "http://127.0.0.1:8092/",
        "credentials": {"file": "alipay.json"},
    }
    entry.update(overrides)
    return AlipayAccount.model_validate(entry)


def fixture_bundle() -> dict[str, str]:
    return {
        "app_id": SANDBOX_APP_ID,
        "app_private_key": (FIXTURES / "app_private_key.pem").read_text(),
        "alipay_public_key": (FIXTURES / "alipay_public_key.pem").read_text(),
    }


def test_account_defaults() -> None:
    config = account()
    assert config.base_url == "http://127.0.0.1:8092"
    assert config.gateway == "http://127.0.0.1:8092/gateway.do"
    assert config.livemode is False
    assert (config.timeouts.connect, config.timeouts.total) == (2.0, 10.0)
    assert config.methods is None


def test_the_documented_gateway_url_is_taken_as_is() -> None:
    config = account(base_url="https://openapi.alipay.com/gateway.do")
    assert config.base_url == "https://openapi.alipay.com"
    assert config.gateway == "https://openapi.alipay.com/gateway.do"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"type": "wechat"}, "type"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "https://openapi.alipay.com/gateway.do?charset=utf-8"}, "base_url"),
        ({"credentials": {"file": "a.json", "env": "B"}}, "credentials"),
        ({"methods": ["qr", "card"]}, "methods"),
        ({"methods": []}, "methods"),
        ({"timeouts": {"connect": -1}}, "timeouts.connect"),
        ({"app_id": "2021000000000001"}, "app_id"),
    ],
)
def test_account_errors_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        account(**overrides)
    locations = {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}
    assert any(location.startswith(field) for location in locations), locations


async def test_channel_capabilities() -> None:
    credentials = AlipayCredentials.model_validate(fixture_bundle())
    async with aiohttp.ClientSession() as session:
        channel: Channel = AlipayChannel("alipay_main", account(), credentials, session)
        subset = AlipayChannel("alipay_qr", account(methods=["qr", "web"]), credentials, session)
    assert channel.account == "alipay_main"
    capabilities = channel.capabilities
    assert capabilities.wallet == "alipay"
    assert capabilities.methods == frozenset(METHODS)
    assert capabilities.currencies == frozenset({"CNY"})
    assert capabilities.partial_refunds
    assert subset.capabilities.methods == frozenset({"qr", "web"})
    assert not subset.capabilities.supports("barcode", "CNY")
    assert "PRIVATE" not in repr(channel)


def test_credentials_hide_the_private_key() -> None:
    credentials = AlipayCredentials.model_validate(fixture_bundle())
    assert "PRIVATE" not in repr(credentials)
    assert "PRIVATE" not in str(credentials.model_dump())
    assert credentials.bundle() == fixture_bundle()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"app_id": "wx123"}, "app_id"),
        ({"app_private_key": "garbage"}, "app_private_key"),
        ({"alipay_public_key": "garbage"}, "alipay_public_key"),
        ({"extra": "x"}, "extra"),
    ],
)
def test_bad_bundles_name_the_field(tmp_path: Path, changes: dict[str, str], message: str) -> None:
    (tmp_path / "alipay.json").write_text(json.dumps({**fixture_bundle(), **changes}))
    with pytest.raises(CredentialsError, match=message) as caught:
        load_credentials(CredentialsRef(file="alipay.json"), tmp_path)
    assert "PRIVATE KEY" not in str(caught.value)
    assert "garbage" not in str(caught.value)


def test_bundle_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIPAY_BUNDLE", json.dumps(fixture_bundle()))
    credentials = load_credentials(CredentialsRef(env="ALIPAY_BUNDLE"), tmp_path)
    assert credentials.app_id == SANDBOX_APP_ID


def test_sandbox_is_generated_once(tmp_path: Path) -> None:
    first = ensure_sandbox(tmp_path)
    assert first.credentials_path == tmp_path / "alipay" / f"{SANDBOX_APP_ID}.json"
    for path in (credentials_path(tmp_path), alipay_key_path(tmp_path)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    bundle = json.loads(credentials_path(tmp_path).read_text())
    assert set(bundle) == {"app_id", "app_private_key", "alipay_public_key"}
    assert "PRIVATE" not in bundle["alipay_public_key"]
    again = ensure_sandbox(tmp_path)
    assert again.credentials.bundle() == first.credentials.bundle()
    assert again.alipay_private_key.private_numbers() == first.alipay_private_key.private_numbers()


async def test_build_reads_the_sandbox_bundle(tmp_path: Path) -> None:
    ensure_sandbox(tmp_path)
    config = account(credentials={"file": f"alipay/{SANDBOX_APP_ID}.json"})
    async with aiohttp.ClientSession() as session:
        channel = build("alipay_main", config, tmp_path, session)
    assert repr(channel) == f"AlipayChannel('alipay_main', app_id='{SANDBOX_APP_ID}')"


def test_mismatched_sandbox_files_are_refused(tmp_path: Path) -> None:
    ensure_sandbox(tmp_path)
    alipay_key_path(tmp_path).write_text((FIXTURES / "alipay_private_key.pem").read_text())
    with pytest.raises(CredentialsError, match="do not belong together"):
        ensure_sandbox(tmp_path)
    alipay_key_path(tmp_path).write_text("not a key")
    with pytest.raises(CredentialsError, match="unreadable"):
        ensure_sandbox(tmp_path)
