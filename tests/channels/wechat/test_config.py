"""WeChat account config, credential loading and the sandbox files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError

from channels.base import Channel
from channels.credentials import CredentialsError, CredentialsRef
from channels.wechat import WeChatAccount, WeChatChannel, build, load_credentials
from channels.wechat.sandbox import (
    SANDBOX_MCHID,
    credentials_path,
    ensure_sandbox,
    platform_key_path,
)


def account(**overrides: object) -> WeChatAccount:
    entry: dict[str, object] = {
        "type": "wechat",
        "base_url": "http://127.0.0.1:8091/",
        "credentials": {"file": "wechat.json"},
    }
    entry.update(overrides)
    return WeChatAccount.model_validate(entry)


def test_account_defaults() -> None:
    config = account()
    assert config.base_url == "http://127.0.0.1:8091"
    assert config.livemode is False
    assert (config.timeouts.connect, config.timeouts.total) == (2.0, 10.0)
    assert config.methods is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"type": "alipay"}, "type"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"credentials": {"file": "a.json", "env": "B"}}, "credentials"),
        ({"credentials": {}}, "credentials"),
        ({"methods": ["qr", "web"]}, "methods"),
        ({"methods": []}, "methods"),
        ({"timeouts": {"total": 0}}, "timeouts.total"),
        ({"secret": "x"}, "secret"),
    ],
)
def test_account_errors_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        account(**overrides)
    locations = {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}
    assert any(location.startswith(field) for location in locations), locations


async def test_channel_capabilities(tmp_path: Path) -> None:
    sandbox = ensure_sandbox(tmp_path)
    config = account(methods=["qr", "h5"])
    async with aiohttp.ClientSession() as session:
        channel: Channel = WeChatChannel("wechat_qr", config, sandbox.credentials, session)
    assert channel.account == "wechat_qr"
    assert channel.capabilities.wallet == "wechat"
    assert channel.capabilities.methods == frozenset({"qr", "h5"})
    assert channel.capabilities.supports("qr", "CNY")
    assert not channel.capabilities.supports("qr", "USD")
    assert not channel.capabilities.supports("jsapi", "CNY")


def test_sandbox_is_generated_once(tmp_path: Path) -> None:
    first = ensure_sandbox(tmp_path)
    assert first.credentials_path == tmp_path / "wechat" / f"{SANDBOX_MCHID}.json"
    for path in (credentials_path(tmp_path), platform_key_path(tmp_path)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ensure_sandbox(tmp_path)
    assert again.credentials.bundle() == first.credentials.bundle()
    bundle = json.loads(first.credentials_path.read_text())
    assert bundle["mchid"] == SANDBOX_MCHID
    assert bundle["platform_public_key_id"].startswith("PUB_KEY_ID_")
    assert len(bundle["apiv3_key"]) == 32
    assert "PRIVATE KEY" not in bundle["platform_public_key"]
    assert "platform_private_key" not in bundle


def test_sandbox_refuses_mismatched_files(tmp_path: Path) -> None:
    ensure_sandbox(tmp_path)
    other = tmp_path / "other"
    ensure_sandbox(other)
    platform_key_path(tmp_path).write_bytes(platform_key_path(other).read_bytes())
    with pytest.raises(CredentialsError, match="do not belong together"):
        ensure_sandbox(tmp_path)
    platform_key_path(tmp_path).unlink()
    with pytest.raises(CredentialsError, match=r"platform-key\.pem"):
        ensure_sandbox(tmp_path)


def test_load_credentials_from_file_relative_to_base_dir(tmp_path: Path) -> None:
    sandbox = ensure_sandbox(tmp_path / "sandbox")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    ref = CredentialsRef(file="../sandbox/wechat/1900000001.json")
    assert load_credentials(ref, config_dir).bundle() == sandbox.credentials.bundle()


async def test_build_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = ensure_sandbox(tmp_path)
    monkeypatch.setenv("WECHAT_MAIN_CREDENTIALS", sandbox.credentials_path.read_text())
    config = account(credentials={"env": "WECHAT_MAIN_CREDENTIALS"})
    async with aiohttp.ClientSession() as session:
        channel = build("wechat_main", config, Path("/nonexistent"), session)
    assert "1900000001" in repr(channel)


def test_credential_errors_name_source_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = ensure_sandbox(tmp_path).credentials.bundle()
    secret = bundle["apiv3_key"]

    with pytest.raises(CredentialsError, match="WECHAT_UNSET is not set"):
        load_credentials(CredentialsRef(env="WECHAT_UNSET"), tmp_path)
    with pytest.raises(CredentialsError, match=r"missing\.json: cannot read"):
        load_credentials(CredentialsRef(file="missing.json"), tmp_path)

    broken = tmp_path / "broken.json"
    broken.write_text('{"apiv3_key": "' + secret + '",')
    with pytest.raises(CredentialsError, match="not valid JSON") as caught:
        load_credentials(CredentialsRef(file="broken.json"), tmp_path)
    assert secret not in str(caught.value)

    cases = {
        "apiv3_key": (secret[:-1], "apiv3_key"),
        "merchant_private_key": ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "merchant_private_key"),
        "appid": ("not-an-appid", "appid"),
    }
    for name, (value, expected) in cases.items():
        monkeypatch.setenv("WECHAT_BAD", json.dumps({**bundle, name: value}))
        with pytest.raises(CredentialsError) as caught:
            load_credentials(CredentialsRef(env="WECHAT_BAD"), tmp_path)
        message = str(caught.value)
        assert "WECHAT_BAD" in message
        assert expected in message
        assert secret[:-1] not in message
        assert "AAAA" not in message

    incomplete = {k: v for k, v in bundle.items() if k != "platform_public_key_id"}
    monkeypatch.setenv("WECHAT_BAD", json.dumps(incomplete))
    with pytest.raises(CredentialsError, match="platform_public_key_id: Field required"):
        load_credentials(CredentialsRef(env="WECHAT_BAD"), tmp_path)


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    credentials = ensure_sandbox(tmp_path).credentials
    text = repr(credentials) + str(credentials) + repr(credentials.model_dump())
    assert credentials.apiv3_key.get_secret_value() not in text
    assert "PRIVATE KEY" not in text
    assert os.fspath(tmp_path) not in repr(credentials)
