"""Sandbox credentials for the UnionPay simulator: a real X.509 chain, made once and kept.

Files under `<sandbox_dir>/unionpay/` (secrets mode 0600):

- `777290058110048.json`: the merchant's credential bundle
  (`channels.unionpay.config.UnionPayCredentials`), what a routing config names and what
  `GET /sim/accounts` hands out: the merchant's signing key and certificate, and the channel's
  middle and root certificates;
- `channel-signing-key.pem` and `channel-signing-cert.pem`: the channel's signing pair, read
  only by the simulator, which signs answers and notifications with it and sends the
  certificate as `signPubKeyCert`.

The chain: a self-signed root CA issues a middle CA, which issues both the channel's signing
certificate (CN `041@Z12@00040000:SIGN@00000062`, like UnionPay's test certificates) and the
merchant's. The CA keys are thrown away once the certificates are made.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from channels.credentials import CredentialsError
from channels.sandbox_files import locked, new_rsa_key, read_bundle_file, write_bundle
from channels.sandbox_files import write_secret as write_secret
from channels.unionpay.config import UnionPayCredentials
from channels.unionpay.crypto import (
    TEST_OWNER,
    certificate_pem,
    load_certificate,
    load_private_key,
    private_key_pem,
    public_key,
)

SANDBOX_MER_ID = "777290058110048"
CHANNEL_CN = f"041@Z12@{TEST_OWNER}@00000062"

new_key = new_rsa_key
"""A fresh 2048-bit RSA key (the tests' key helpers name it here)."""


def subject_name(common_name: str, unit: str) -> x509.Name:
    """A sandbox certificate subject: C, O, OU and the CN UnionPay's checks read."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China UnionPay (sandbox)"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _serial() -> int:
    # Short decimal serials, like the certIds UnionPay hands out (11-12 digits).
    return 10**10 + secrets.randbelow(9 * 10**11)


def issue(
    *,
    subject: x509.Name,
    key: rsa.RSAPublicKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    ca: bool,
    not_before: datetime,
    not_after: datetime,
    serial: int | None = None,
    path_length: int | None = None,
) -> x509.Certificate:
    """One certificate: a CA (`ca=True`, at most `path_length` CAs below it) or a signing
    (end-entity) certificate."""
    usage = x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(serial or _serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), True)
        .add_extension(usage, True)
        .sign(issuer_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class Chain:
    """A freshly made root → middle chain, with the keys to issue more."""

    root: x509.Certificate
    root_key: rsa.RSAPrivateKey
    middle: x509.Certificate
    middle_key: rsa.RSAPrivateKey

    def sign_leaf(
        self,
        common_name: str,
        key: rsa.RSAPublicKey,
        *,
        not_before: datetime,
        not_after: datetime,
    ) -> x509.Certificate:
        """A signing certificate issued by the middle CA."""
        return issue(
            subject=subject_name(common_name, "Signing"),
            key=key,
            issuer=self.middle.subject,
            issuer_key=self.middle_key,
            ca=False,
            not_before=not_before,
            not_after=not_after,
        )


def make_chain(
    now: datetime,
    root_key: rsa.RSAPrivateKey | None = None,
    middle_key: rsa.RSAPrivateKey | None = None,
) -> Chain:
    """A root CA (20 years) and a middle CA (10 years) valid from a day before `now`."""
    root_key = root_key or new_rsa_key()
    middle_key = middle_key or new_rsa_key()
    start = now - timedelta(days=1)
    root_name = subject_name("CFCA ACS SANDBOX ROOT", "Root CA")
    root = issue(
        subject=root_name,
        key=root_key.public_key(),
        issuer=root_name,
        issuer_key=root_key,
        ca=True,
        not_before=start,
        not_after=now + timedelta(days=365 * 20),
    )
    middle = issue(
        subject=subject_name("CFCA ACS SANDBOX OCA31", "Middle CA"),
        key=middle_key.public_key(),
        issuer=root_name,
        issuer_key=root_key,
        ca=True,
        not_before=start,
        not_after=now + timedelta(days=365 * 10),
        path_length=0,
    )
    return Chain(root, root_key, middle, middle_key)


@dataclass(frozen=True)
class SandboxAccount:
    """One sandbox merchant as the simulator sees it."""

    credentials: UnionPayCredentials
    channel_key: rsa.RSAPrivateKey
    channel_cert: x509.Certificate
    credentials_path: Path
    """The bundle file a routing config can name."""

    @property
    def mer_id(self) -> str:
        return self.credentials.mer_id

    @property
    def channel_cert_pem(self) -> str:
        return certificate_pem(self.channel_cert)


def credentials_path(sandbox_dir: Path, mer_id: str = SANDBOX_MER_ID) -> Path:
    return sandbox_dir / "unionpay" / f"{mer_id}.json"


def channel_key_path(sandbox_dir: Path) -> Path:
    return sandbox_dir / "unionpay" / "channel-signing-key.pem"


def channel_cert_path(sandbox_dir: Path) -> Path:
    return sandbox_dir / "unionpay" / "channel-signing-cert.pem"


def mer_id_of(index: int) -> str:
    """The merchant id of the sandbox's `index`-th account (0: `SANDBOX_MER_ID`)."""
    return str(int(SANDBOX_MER_ID) + index)


def ensure_sandbox(sandbox_dir: Path, index: int = 0) -> SandboxAccount:
    """Load the `index`-th sandbox account under `sandbox_dir`, generating it on first use.

    Every account shares the simulated channel's key, certificate and CA chain (those of the
    first); each has its own signing key and certificate. Safe against concurrent first
    starts (a file lock); never overwrites existing files. Raises `CredentialsError` when
    existing files are unreadable or inconsistent.
    """
    files = [credentials_path(sandbox_dir), channel_key_path(sandbox_dir)]
    files.append(channel_cert_path(sandbox_dir))
    with locked(sandbox_dir / "unionpay"):
        if not any(path.exists() for path in files):
            _generate(sandbox_dir)
    first = _load(sandbox_dir)
    if index == 0:
        return first
    mer_id = mer_id_of(index)
    bundle_file = credentials_path(sandbox_dir, mer_id)
    with locked(sandbox_dir / "unionpay"):
        if not bundle_file.exists():
            _generate_merchant(bundle_file, mer_id, first.credentials)
    credentials = read_bundle_file(bundle_file, UnionPayCredentials)
    return SandboxAccount(credentials, first.channel_key, first.channel_cert, bundle_file)


def _generate_merchant(bundle_file: Path, mer_id: str, first: UnionPayCredentials) -> None:
    """Another merchant: its own key and certificate (issued by a CA of its own, as the
    simulator checks a merchant's signature against the certificate it registered), and the
    first account's root and middle certificates, which vouch for the channel's answers."""
    now = datetime.now(UTC)
    key = new_rsa_key()
    cert = make_chain(now).sign_leaf(
        f"041@Z{mer_id}@payrouter sandbox merchant@00000001",
        key.public_key(),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365 * 5),
    )
    credentials = UnionPayCredentials.model_validate(
        {
            "mer_id": mer_id,
            "signing_key": private_key_pem(key),
            "signing_cert": certificate_pem(cert),
            "middle_cert": first.middle_cert,
            "root_cert": first.root_cert,
        }
    )
    write_bundle(bundle_file, credentials.bundle())


def _generate(sandbox_dir: Path) -> None:
    now = datetime.now(UTC)
    chain = make_chain(now)
    channel_key, merchant_key = new_rsa_key(), new_rsa_key()
    leaf_end = now + timedelta(days=365 * 5)
    channel_cert = chain.sign_leaf(
        CHANNEL_CN, channel_key.public_key(), not_before=now - timedelta(days=1), not_after=leaf_end
    )
    merchant_cert = chain.sign_leaf(
        f"041@Z{SANDBOX_MER_ID}@payrouter sandbox merchant@00000001",
        merchant_key.public_key(),
        not_before=now - timedelta(days=1),
        not_after=leaf_end,
    )
    credentials = UnionPayCredentials.model_validate(
        {
            "mer_id": SANDBOX_MER_ID,
            "signing_key": private_key_pem(merchant_key),
            "signing_cert": certificate_pem(merchant_cert),
            "middle_cert": certificate_pem(chain.middle),
            "root_cert": certificate_pem(chain.root),
        }
    )
    write_secret(channel_key_path(sandbox_dir), private_key_pem(channel_key))
    write_secret(channel_cert_path(sandbox_dir), certificate_pem(channel_cert))
    write_bundle(credentials_path(sandbox_dir), credentials.bundle())


def _load(sandbox_dir: Path) -> SandboxAccount:
    bundle_file = credentials_path(sandbox_dir)
    credentials = read_bundle_file(bundle_file, UnionPayCredentials)
    key_file, cert_file = channel_key_path(sandbox_dir), channel_cert_path(sandbox_dir)
    try:
        channel_key = load_private_key(key_file.read_text(encoding="utf-8"))
        channel_cert = load_certificate(cert_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"sandbox files in {key_file.parent}: unreadable ({exc})") from None
    mismatch = (
        public_key(channel_cert).public_numbers() != channel_key.public_key().public_numbers()
    )
    try:
        channel_cert.verify_directly_issued_by(credentials.middle)
    except (ValueError, TypeError, InvalidSignature):
        mismatch = True
    if mismatch:
        raise CredentialsError(
            f"sandbox files in {key_file.parent} do not belong together; "
            "remove the folder to generate a new sandbox account"
        )
    return SandboxAccount(credentials, channel_key, channel_cert, bundle_file)
