"""UnionPay ACP 5.1.0 signatures and certificates. Pure functions, no I/O.

Signing (`signMethod=01`, version 5.1.0), the same for requests, answers and notifications:

1. take every field but `signature`, sorted by name, as `k=v` joined with `&`;
2. the lowercase hex SHA-256 of that string (UTF-8);
3. SHA256withRSA (PKCS#1 v1.5) over the hex string's bytes, base64.

Requests carry `certId`: the decimal serial number of the merchant's signing certificate, which
the channel has on file. Answers and notifications instead carry `signPubKeyCert`, the channel's
signing certificate as PEM; a merchant trusts it only after checking it against the channel's
middle and root certificates (issuer names and signatures, validity periods, CA flags) and the
owner named in its CN, then checks the signature with its key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from channels.rsa import load_private_key as load_private_key
from channels.rsa import private_key_pem as private_key_pem
from channels.rsa import sign as rsa_sign
from channels.rsa import verify as rsa_verify

SIGNATURE_FIELD = "signature"
CERT_FIELD = "signPubKeyCert"

UNIONPAY_OWNER = "中国银联股份有限公司"
"""The owner named (third `@` part of the CN) in UnionPay's production signing certificates."""
TEST_OWNER = "00040000:SIGN"
"""The owner named in UnionPay's test-environment signing certificates."""


class VerificationError(Exception):
    """A signature or certificate that does not check out."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        """`signature`, `certificate` or `malformed`."""
        self.message = message


def signing_string(fields: Mapping[str, str]) -> str:
    """Every field but `signature`, sorted by name, as `k=v` joined with `&`."""
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != SIGNATURE_FIELD)


def signing_digest(fields: Mapping[str, str]) -> bytes:
    """The bytes SHA256withRSA covers: the lowercase hex SHA-256 of the signing string."""
    return hashlib.sha256(signing_string(fields).encode()).hexdigest().encode()


def sign(fields: Mapping[str, str], key: rsa.RSAPrivateKey) -> str:
    """The base64 `signature` value for `fields`."""
    return rsa_sign(key, signing_digest(fields))


def verify(fields: Mapping[str, str], key: rsa.RSAPublicKey) -> None:
    """Check `fields["signature"]` with `key`. Raises `VerificationError("signature")`."""
    signature = fields.get(SIGNATURE_FIELD, "")
    if not signature:
        raise VerificationError("signature", "the message is not signed")
    if not rsa_verify(key, signing_digest(fields), signature):
        raise VerificationError("signature", "the signature does not verify")


def load_certificate(pem: str) -> x509.Certificate:
    """One X.509 certificate from PEM with an RSA key. Raises `ValueError`."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise ValueError("not a PEM certificate") from exc
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise ValueError("the certificate does not hold an RSA key")
    return cert


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def public_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the certificate does not hold an RSA key")
    return key


def cert_id(cert: x509.Certificate) -> str:
    """`certId`: the certificate's serial number in decimal."""
    return str(cert.serial_number)


def owner(cert: x509.Certificate) -> str:
    """The third `@`-separated part of the subject CN (`041@Z12@<owner>@00000062`)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    parts = common_name.split("@")
    return parts[2] if len(parts) > 2 else ""


class ChainVerifier:
    """Trusts a channel signing certificate only through the configured middle and root.

    `owners` lists the CN owners accepted (UnionPay's name; test certificates name
    `00040000:SIGN`). Verified leaves are remembered by their bytes, so the chain is checked
    once per certificate, but validity is checked on every use.
    """

    def __init__(
        self, root: x509.Certificate, middle: x509.Certificate, owners: frozenset[str]
    ) -> None:
        self._root = root
        self._middle = middle
        self._owners = owners
        self._known: dict[bytes, x509.Certificate] = {}

    def verify_pem(self, pem: str, now: datetime) -> x509.Certificate:
        """The leaf certificate in `pem`, once trusted. Raises `VerificationError`."""
        cert = self._known.get(pem.encode())
        if cert is None:
            try:
                cert = load_certificate(pem)
            except ValueError as exc:
                raise VerificationError("certificate", f"signPubKeyCert: {exc}") from None
            self._check_chain(cert)
        for link, name in ((cert, "signing"), (self._middle, "middle"), (self._root, "root")):
            _check_validity(link, name, now)
        self._known[pem.encode()] = cert
        return cert

    def _check_chain(self, leaf: x509.Certificate) -> None:
        _check_issued(leaf, self._middle, "the signing certificate", "the middle certificate")
        _check_issued(self._middle, self._root, "the middle certificate", "the root certificate")
        _check_issued(self._root, self._root, "the root certificate", "itself")
        if not _is_ca(self._middle) or _path_length(self._root) == 0:
            raise VerificationError("certificate", "the middle certificate cannot issue")
        if _is_ca(leaf):
            raise VerificationError("certificate", "the signing certificate is a CA certificate")
        if owner(leaf) not in self._owners:
            raise VerificationError(
                "certificate", f"the signing certificate belongs to {owner(leaf)!r}, not UnionPay"
            )


def verify_chain(
    leaf: x509.Certificate,
    middle: x509.Certificate,
    root: x509.Certificate,
    now: datetime,
    owners: Iterable[str] = (UNIONPAY_OWNER,),
) -> None:
    """Check that `leaf` is a UnionPay signing certificate issued through `middle` by `root`."""
    ChainVerifier(root, middle, frozenset(owners)).verify_pem(certificate_pem(leaf), now)


def _check_issued(cert: x509.Certificate, issuer: x509.Certificate, what: str, by: str) -> None:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise VerificationError("certificate", f"{what} is not issued by {by}") from None


def _constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = _constraints(cert)
    return constraints is not None and constraints.ca


def _path_length(cert: x509.Certificate) -> int | None:
    """How many CAs may follow `cert`: `None` unlimited, `0` for a non-CA too."""
    constraints = _constraints(cert)
    if constraints is None or not constraints.ca:
        return 0
    return constraints.path_length


def _check_validity(cert: x509.Certificate, name: str, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise VerificationError("certificate", f"the {name} certificate is not yet valid")
    if now > cert.not_valid_after_utc:
        raise VerificationError("certificate", f"the {name} certificate has expired")


def verify_signed(
    fields: Mapping[str, str], verifier: ChainVerifier, now: datetime
) -> x509.Certificate:
    """Check an answer's or notification's certificate, then its signature.

    Returns the signing certificate. Raises `VerificationError`.
    """
    pem = fields.get(CERT_FIELD, "")
    if not pem:
        raise VerificationError("certificate", "the message carries no signPubKeyCert")
    cert = verifier.verify_pem(pem, now)
    verify(fields, public_key(cert))
    return cert
