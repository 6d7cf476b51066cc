"""UnionPay account config, credential loading and the sandbox files."""

from __future__ import annotations

import json
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError

from channels.base import Channel
from channels.credentials import CredentialsError, CredentialsRef
from channels.unionpay import (
    UnionPayAccount,
    UnionPayChannel,
    UnionPayCredentials,
    build,
    load_credentials,
)
from channels.unionpay.crypto import TEST_OWNER, verify_chain
from channels.unionpay.sandbox import (
    SANDBOX_MER_ID,
    SandboxAccount,
    channel_cert_path,
    channel_key_path,
    credentials_path,
    ensure_sandbox,
)
from tests.channels.unionpay.keys import chain, install_sandbox


def account(**overrides: object) -> UnionPayAccount:
    entry: dict[str, object] = {
        "type": "unionpay",
        "base_url": "http://127.0.0.1:8093/",
        "credentials": {"file": "unionpay.json"},
    }
    entry.update(overrides)
    return UnionPayAccount.model_validate(entry)


def test_account_defaults() -> None:
    config = account()
    assert config.base_url == "http://127.0.0.1:8093"
    assert config.livemode is False
    assert (config.timeouts.connect, config.timeouts.total) == (2.0, 10.0)
    assert config.methods is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"type": "wechat"}, "type"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"credentials": {}}, "credentials"),
        ({"methods": ["qr", "jsapi"]}, "methods"),
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


async def test_channel_capabilities(unionpay_sandbox_dir: Path) -> None:
    ref = CredentialsRef(file=f"unionpay/{SANDBOX_MER_ID}.json")
    credentials = load_credentials(ref, unionpay_sandbox_dir)
    qr_only = account(methods=["qr"])
    async with aiohttp.ClientSession() as session:
        full: Channel = UnionPayChannel("unionpay_main", account(), credentials, session)
        subset: Channel = UnionPayChannel("unionpay_qr", qr_only, credentials, session)
    assert full.account == "unionpay_main"
    assert full.capabilities.wallet == "unionpay"
    assert full.capabilities.methods == frozenset({"qr", "web", "h5", "app", "barcode"})
    assert full.capabilities.currencies == frozenset({"CNY"})
    assert full.capabilities.partial_refunds
    assert not full.capabilities.supports("jsapi", "CNY")
    assert not full.capabilities.supports("qr", "USD")
    assert subset.capabilities.methods == frozenset({"qr"})


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> SandboxAccount:
    """One sandbox made by `ensure_sandbox` itself (four RSA keys: the slow part)."""
    return ensure_sandbox(tmp_path_factory.mktemp("generated"))


def test_sandbox_is_a_real_chain_made_once(generated: SandboxAccount) -> None:
    sandbox_dir = generated.credentials_path.parent.parent
    assert generated.credentials_path == sandbox_dir / "unionpay" / f"{SANDBOX_MER_ID}.json"
    for path in (
        credentials_path(sandbox_dir),
        channel_key_path(sandbox_dir),
        channel_cert_path(sandbox_dir),
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ensure_sandbox(sandbox_dir)
    assert again.credentials.bundle() == generated.credentials.bundle()
    assert again.channel_cert_pem == generated.channel_cert_pem
    credentials = generated.credentials
    now = datetime.now(UTC)
    verify_chain(generated.channel_cert, credentials.middle, credentials.root, now, [TEST_OWNER])
    # The merchant's certificate comes from the same middle CA; its serial is the certId.
    credentials.signing_certificate.verify_directly_issued_by(credentials.middle)
    assert credentials.cert_id == str(credentials.signing_certificate.serial_number)
    bundle = json.loads(generated.credentials_path.read_text())
    assert set(bundle) == {"mer_id", "signing_key", "signing_cert", "middle_cert", "root_cert"}
    assert bundle["mer_id"] == SANDBOX_MER_ID
    assert generated.channel_cert_pem not in bundle.values()


def test_sandbox_refuses_mismatched_files(generated: SandboxAccount, tmp_path: Path) -> None:
    install_sandbox(tmp_path)
    sandbox_dir = generated.credentials_path.parent.parent
    shutil.copy(channel_key_path(sandbox_dir), channel_key_path(tmp_path))
    with pytest.raises(CredentialsError, match="do not belong together"):
        ensure_sandbox(tmp_path)
    channel_cert_path(tmp_path).unlink()
    with pytest.raises(CredentialsError, match="unreadable"):
        ensure_sandbox(tmp_path)


def test_load_credentials_from_file_relative_to_base_dir(tmp_path: Path) -> None:
    install_sandbox(tmp_path / "sandbox")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    ref = CredentialsRef(file=f"../sandbox/unionpay/{SANDBOX_MER_ID}.json")
    assert load_credentials(ref, config_dir).bundle() == chain().bundle()


async def test_build_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIONPAY_MAIN_CREDENTIALS", json.dumps(chain().bundle()))
    config = account(credentials={"env": "UNIONPAY_MAIN_CREDENTIALS"})
    async with aiohttp.ClientSession() as session:
        channel = build("unionpay_main", config, Path("/nonexistent"), session)
    assert SANDBOX_MER_ID in repr(channel)


def test_credential_errors_name_source_and_field(monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = chain().bundle()
    secret_line = bundle["signing_key"].splitlines()[5]
    with pytest.raises(CredentialsError, match="UNIONPAY_UNSET is not set"):
        load_credentials(CredentialsRef(env="UNIONPAY_UNSET"), Path("."))
    cases = {
        "signing_key": ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "signing_key"),
        "signing_cert": (bundle["middle_cert"], "signing_cert: does not hold the public half"),
        "middle_cert": (bundle["signing_cert"], "middle_cert: is not issued by root_cert"),
        "root_cert": ("not a certificate", "root_cert: not a PEM certificate"),
        "mer_id": ("7772900581", "mer_id"),
    }
    for name, (value, expected) in cases.items():
        monkeypatch.setenv("UNIONPAY_BAD", json.dumps({**bundle, name: value}))
        with pytest.raises(CredentialsError) as caught:
            load_credentials(CredentialsRef(env="UNIONPAY_BAD"), Path("."))
        message = str(caught.value)
        assert "UNIONPAY_BAD" in message
        assert expected in message
        assert secret_line not in message
        assert "AAAA" not in message
    incomplete = {k: v for k, v in bundle.items() if k != "root_cert"}
    monkeypatch.setenv("UNIONPAY_BAD", json.dumps(incomplete))
    with pytest.raises(CredentialsError, match="root_cert: Field required"):
        load_credentials(CredentialsRef(env="UNIONPAY_BAD"), Path("."))


def test_secrets_stay_out_of_reprs() -> None:
    credentials = UnionPayCredentials.model_validate(chain().bundle())
    text = repr(credentials) + str(credentials) + repr(credentials.model_dump())
    assert "PRIVATE KEY" not in text
    assert credentials.bundle() == chain().bundle()


def test_the_file_transfer_url_defaults_to_base_url() -> None:
    assert account().statement_url == "http://127.0.0.1:8093"
    elsewhere = account(file_transfer_url="https://filedownload.95516.com/")
    assert elsewhere.statement_url == "https://filedownload.95516.com"
    with pytest.raises(ValidationError) as caught:
        account(file_transfer_url="ftp://x")
    assert caught.value.errors()[0]["loc"] == ("file_transfer_url",)
