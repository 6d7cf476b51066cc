"""Sandbox credentials for the Alipay simulator: generated once, reloaded on every start.

Files under `<sandbox_dir>/alipay/` (mode 0600):

- `2021000000000001.json`: the app's credential bundle
  (`channels.alipay.config.AlipayCredentials`), what a routing config names and what
  `GET /sim/accounts` hands out;
- `2021000000000001.alipay-key.pem`: Alipay's own private key for this app, read only by the
  simulator, which signs answers and notifications with it.

The app id is fixed (`SANDBOX_APP_ID`) so configs can name the file; the keys are random, made
once and kept, so restarts keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay.config import AlipayCredentials
from channels.alipay.crypto import load_private_key, private_key_pem, public_key_pem
from channels.sandbox_files import ensure_key_pair, new_rsa_key

SANDBOX_APP_ID = "2021000000000001"
SANDBOX_SELLER_ID = "2088000000000001"
"""The merchant's Alipay user id (`seller_id` in answers and notifications)."""


@dataclass(frozen=True)
class SandboxAccount:
    """One sandbox app as the simulator sees it."""

    credentials: AlipayCredentials
    alipay_private_key: rsa.RSAPrivateKey
    credentials_path: Path
    """The bundle file a routing config can name."""
    seller_id: str = SANDBOX_SELLER_ID

    @property
    def app_id(self) -> str:
        return self.credentials.app_id

    @property
    def app_public_key(self) -> rsa.RSAPublicKey:
        return self.credentials.app_key.public_key()


def credentials_path(sandbox_dir: Path, app_id: str = SANDBOX_APP_ID) -> Path:
    return sandbox_dir / "alipay" / f"{app_id}.json"


def alipay_key_path(sandbox_dir: Path, app_id: str = SANDBOX_APP_ID) -> Path:
    return sandbox_dir / "alipay" / f"{app_id}.alipay-key.pem"


def app_id_of(index: int) -> str:
    """The app id of the sandbox's `index`-th account (0: `SANDBOX_APP_ID`); its seller id
    is numbered on from `SANDBOX_SELLER_ID` the same way."""
    return str(int(SANDBOX_APP_ID) + index)


def ensure_sandbox(sandbox_dir: Path, index: int = 0) -> SandboxAccount:
    """Load the `index`-th sandbox app under `sandbox_dir`, generating it on first use.

    Safe against concurrent first starts (a file lock); never overwrites existing files.
    Raises `CredentialsError` when existing files are unreadable or inconsistent.
    """
    app_id = app_id_of(index)
    bundle_file = credentials_path(sandbox_dir, app_id)
    credentials, alipay_key = ensure_key_pair(
        bundle_file,
        alipay_key_path(sandbox_dir, app_id),
        AlipayCredentials,
        lambda: _generate(app_id),
        lambda credentials: credentials.alipay_key,
        read_key=load_private_key,
    )
    seller_id = str(int(SANDBOX_SELLER_ID) + index)
    return SandboxAccount(credentials, alipay_key, bundle_file, seller_id)


def _generate(app_id: str = SANDBOX_APP_ID) -> tuple[AlipayCredentials, rsa.RSAPrivateKey]:
    app_key = new_rsa_key()
    alipay_key = new_rsa_key()
    credentials = AlipayCredentials.model_validate(
        {
            "app_id": app_id,
            "app_private_key": private_key_pem(app_key),
            "alipay_public_key": public_key_pem(alipay_key.public_key()),
        }
    )
    return credentials, alipay_key
