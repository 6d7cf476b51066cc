"""Sandbox credentials for the WeChat Pay simulator: generated once, reloaded on every start.

Files under `<sandbox_dir>/wechat/` (mode 0600):

- `1900000001.json`: the merchant's credential bundle (`channels.wechat.config.WeChatCredentials`),
  what a routing config names and what `GET /sim/accounts` hands out;
- `1900000001.platform-key.pem`: the platform private key, read only by the simulator, which
  signs answers and notifications with it.

Ids are fixed (`SANDBOX_MCHID`, `SANDBOX_APPID`) so configs can name the file; keys and the
APIv3 key are random, made once and kept, so restarts keep working. A simulator with several
accounts (`payrouter sim --accounts N`) numbers the others on from `SANDBOX_MCHID`
(`1900000002`, ...), each with its own files.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.sandbox_files import ensure_key_pair, new_rsa_key
from channels.wechat.config import WeChatCredentials
from channels.wechat.crypto import private_key_pem, public_key_pem

SANDBOX_MCHID = "1900000001"
SANDBOX_APPID = "wx2b8f6c1d4e9a7035"


@dataclass(frozen=True)
class SandboxAccount:
    """One sandbox merchant as the simulator sees it."""

    credentials: WeChatCredentials
    platform_private_key: rsa.RSAPrivateKey
    credentials_path: Path
    """The bundle file a routing config can name."""

    @property
    def mchid(self) -> str:
        return self.credentials.mchid

    @property
    def merchant_public_key(self) -> rsa.RSAPublicKey:
        return self.credentials.merchant_key.public_key()


def credentials_path(sandbox_dir: Path, mchid: str = SANDBOX_MCHID) -> Path:
    return sandbox_dir / "wechat" / f"{mchid}.json"


def platform_key_path(sandbox_dir: Path, mchid: str = SANDBOX_MCHID) -> Path:
    return sandbox_dir / "wechat" / f"{mchid}.platform-key.pem"


def mchid_of(index: int) -> str:
    """The merchant id of the sandbox's `index`-th account (0: `SANDBOX_MCHID`)."""
    return str(int(SANDBOX_MCHID) + index)


def ensure_sandbox(sandbox_dir: Path, index: int = 0) -> SandboxAccount:
    """Load the `index`-th sandbox account under `sandbox_dir`, generating it on first use.

    Safe against concurrent first starts (a file lock); never overwrites existing files.
    Raises `CredentialsError` when existing files are unreadable or inconsistent.
    """
    mchid = mchid_of(index)
    bundle_file = credentials_path(sandbox_dir, mchid)
    credentials, platform_key = ensure_key_pair(
        bundle_file,
        platform_key_path(sandbox_dir, mchid),
        WeChatCredentials,
        lambda: _generate(mchid),
        lambda credentials: credentials.platform_key,
    )
    return SandboxAccount(credentials, platform_key, bundle_file)


def _generate(mchid: str = SANDBOX_MCHID) -> tuple[WeChatCredentials, rsa.RSAPrivateKey]:
    merchant_key = new_rsa_key()
    platform_key = new_rsa_key()
    alphabet = string.ascii_letters + string.digits
    key_id_tail = secrets.token_hex(11).upper()
    credentials = WeChatCredentials.model_validate(
        {
            "mchid": mchid,
            "appid": SANDBOX_APPID,
            "merchant_serial_no": secrets.token_hex(20).upper(),
            "merchant_private_key": private_key_pem(merchant_key),
            "platform_public_key_id": f"PUB_KEY_ID_01{mchid}{key_id_tail}",
            "platform_public_key": public_key_pem(platform_key.public_key()),
            "apiv3_key": "".join(secrets.choice(alphabet) for _ in range(32)),
            "app_secret": secrets.token_hex(16),
        }
    )
    return credentials, platform_key
