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

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from channels.alipay.config import AlipayCredentials
from channels.alipay.crypto import load_private_key, private_key_pem, public_key_pem
from channels.credentials import CredentialsError, describe_validation_error

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


def ensure_sandbox(sandbox_dir: Path) -> SandboxAccount:
    """Load the sandbox app under `sandbox_dir`, generating it on first use.

    Safe against concurrent first starts (a file lock); never overwrites existing files.
    Raises `CredentialsError` when existing files are unreadable or inconsistent.
    """
    folder = sandbox_dir / "alipay"
    folder.mkdir(parents=True, exist_ok=True)
    bundle_file = credentials_path(sandbox_dir)
    key_file = alipay_key_path(sandbox_dir)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not bundle_file.exists() and not key_file.exists():
            credentials, alipay_key = _generate()
            _write_secret(key_file, private_key_pem(alipay_key))
            _write_secret(bundle_file, json.dumps(credentials.bundle(), indent=2) + "\n")
    return _load(bundle_file, key_file)


def _generate() -> tuple[AlipayCredentials, rsa.RSAPrivateKey]:
    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alipay_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    credentials = AlipayCredentials.model_validate(
        {
            "app_id": SANDBOX_APP_ID,
            "app_private_key": private_key_pem(app_key),
            "alipay_public_key": public_key_pem(alipay_key.public_key()),
        }
    )
    return credentials, alipay_key


def _write_secret(path: Path, text: str) -> None:
    # Written to a private temporary file and renamed, so no reader sees half a key.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def _load(bundle_file: Path, key_file: Path) -> SandboxAccount:
    try:
        data = json.loads(bundle_file.read_text(encoding="utf-8"))
        credentials = AlipayCredentials.model_validate(data)
    except (OSError, json.JSONDecodeError) as exc:
        raise CredentialsError(f"sandbox file {bundle_file}: unreadable ({exc})") from None
    except ValidationError as exc:
        raise describe_validation_error(f"sandbox file {bundle_file}", exc) from None
    try:
        alipay_key = load_private_key(key_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"sandbox file {key_file}: unreadable ({exc})") from None
    public = public_key_pem(alipay_key.public_key())
    if public_key_pem(credentials.alipay_key) != public:
        raise CredentialsError(
            f"sandbox files {bundle_file.name} and {key_file.name} do not belong together; "
            f"remove both to generate a new sandbox account"
        )
    return SandboxAccount(credentials, alipay_key, bundle_file)
