"""The committed UnionPay test chain (`tests/fixtures/unionpay/`) and sandboxes made from it.

Tests never generate RSA keys for the chain: the keys and certificates are committed, valid
from 2025 to 2125, and `install_sandbox` writes a simulator sandbox from them in milliseconds.
Regenerate them (new keys, so every signature vector changes) with
`python -m tests.channels.unionpay.keys`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.unionpay.crypto import (
    certificate_pem,
    load_certificate,
    load_private_key,
    private_key_pem,
)
from channels.unionpay.sandbox import (
    CHANNEL_CN,
    SANDBOX_MER_ID,
    channel_cert_path,
    channel_key_path,
    credentials_path,
    issue,
    new_key,
    subject_name,
    write_secret,
)
from tests.conftest import FIXTURES

FOLDER = FIXTURES / "unionpay"
NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2125, 1, 1, tzinfo=UTC)
MERCHANT_SERIAL = 73146921577
CHANNEL_SERIAL = 69042905377
NAMES = ("root", "middle", "channel", "merchant")
MERCHANT_CN = f"041@Z{SANDBOX_MER_ID}@payrouter test merchant@00000001"


@dataclass(frozen=True)
class TestChain:
    """The committed chain: root → middle → {channel signing leaf, merchant signing leaf}."""

    __test__ = False

    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    middle_key: rsa.RSAPrivateKey
    middle: x509.Certificate
    channel_key: rsa.RSAPrivateKey
    channel: x509.Certificate
    merchant_key: rsa.RSAPrivateKey
    merchant: x509.Certificate

    def bundle(self) -> dict[str, str]:
        """The merchant's credential bundle for this chain."""
        return {
            "mer_id": SANDBOX_MER_ID,
            "signing_key": private_key_pem(self.merchant_key),
            "signing_cert": certificate_pem(self.merchant),
            "middle_cert": certificate_pem(self.middle),
            "root_cert": certificate_pem(self.root),
        }


@cache
def chain() -> TestChain:
    parts: list[object] = []
    for name in NAMES:
        parts.append(load_private_key((FOLDER / f"{name}_key.pem").read_text()))
        parts.append(load_certificate((FOLDER / f"{name}_cert.pem").read_text()))
    return TestChain(*parts)  # type: ignore[arg-type]


def install_sandbox(sandbox_dir: Path) -> Path:
    """Write the sandbox files `ensure_sandbox` would make, from the committed chain."""
    test_chain = chain()
    (sandbox_dir / "unionpay").mkdir(parents=True, exist_ok=True)
    write_secret(channel_key_path(sandbox_dir), private_key_pem(test_chain.channel_key))
    write_secret(channel_cert_path(sandbox_dir), certificate_pem(test_chain.channel))
    bundle = json.dumps(test_chain.bundle(), indent=2) + "\n"
    write_secret(credentials_path(sandbox_dir), bundle)
    return sandbox_dir


def _generate(folder: Path) -> None:
    keys = {name: new_key() for name in NAMES}
    root_name = subject_name("PAYROUTER TEST ROOT", "Root CA")
    middle_name = subject_name("PAYROUTER TEST OCA", "Middle CA")
    certs = {
        "root": issue(
            subject=root_name,
            key=keys["root"].public_key(),
            issuer=root_name,
            issuer_key=keys["root"],
            ca=True,
            not_before=NOT_BEFORE,
            not_after=NOT_AFTER,
        ),
        "middle": issue(
            subject=middle_name,
            key=keys["middle"].public_key(),
            issuer=root_name,
            issuer_key=keys["root"],
            ca=True,
            not_before=NOT_BEFORE,
            not_after=NOT_AFTER,
            path_length=0,
        ),
        "channel": issue(
            subject=subject_name(CHANNEL_CN, "Signing"),
            key=keys["channel"].public_key(),
            issuer=middle_name,
            issuer_key=keys["middle"],
            ca=False,
            serial=CHANNEL_SERIAL,
            not_before=NOT_BEFORE,
            not_after=NOT_AFTER,
        ),
        "merchant": issue(
            subject=subject_name(MERCHANT_CN, "Signing"),
            key=keys["merchant"].public_key(),
            issuer=middle_name,
            issuer_key=keys["middle"],
            ca=False,
            serial=MERCHANT_SERIAL,
            not_before=NOT_BEFORE,
            not_after=NOT_AFTER,
        ),
    }
    for name in NAMES:
        (folder / f"{name}_key.pem").write_text(private_key_pem(keys[name]))
        (folder / f"{name}_cert.pem").write_text(certificate_pem(certs[name]))


if __name__ == "__main__":
    _generate(FOLDER)
