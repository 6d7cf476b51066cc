"""A UnionPay account as the routing config names it, and its credential bundle.

Routing config entry (YAML)::

    unionpay_main:
      type: unionpay
      base_url: http://127.0.0.1:8093
      file_transfer_url: https://filedownload.95516.com   # optional; default base_url
      credentials: {file: ../.sandbox/unionpay/777290058110048.json}
      timeouts: {connect: 2, total: 10}
      methods: [qr, web]         # optional subset

The credential bundle is one entry of the simulator's `GET /sim/accounts` answer (and the
sandbox file `<sandbox_dir>/unionpay/777290058110048.json`)::

    {"mer_id", "signing_key", "signing_cert", "middle_cert", "root_cert"}

`signing_key` (PKCS#8 PEM) and `signing_cert` are the merchant's signing pair (the certificate's
serial number is the `certId` of every request); `middle_cert` and `root_cert` are UnionPay's
certificates, the only ones through which a `signPubKeyCert` is trusted.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from channels.base import Method
from channels.credentials import AccountBase, CredentialsBase, parse_pem, pem_error
from channels.unionpay.crypto import (
    cert_id,
    load_certificate,
    load_private_key,
    public_key,
)

__all__ = [
    "SUPPORTED_METHODS",
    "UnionPayAccount",
    "UnionPayCredentials",
    "load_credentials",
]

SUPPORTED_METHODS: frozenset[Method] = frozenset({"qr", "web", "h5", "app", "barcode"})


class UnionPayAccount(AccountBase):
    """One UnionPay online-payments account in the routing config."""

    channel_name: ClassVar[str] = "UnionPay"
    supported_methods: ClassVar[frozenset[Method]] = SUPPORTED_METHODS

    type: Literal["unionpay"]
    file_transfer_url: str | None = None
    """Where the settlement file is fetched (`fileTransRequest.do`): production UnionPay
    serves it from its own host; absent, `base_url` (the simulator serves both)."""

    @field_validator("file_transfer_url")
    @classmethod
    def _file_transfer_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or "?" in value:
            raise ValueError("file_transfer_url must be an http(s) URL without a query")
        return value.rstrip("/")

    @property
    def statement_url(self) -> str:
        """The base URL of the file transfer."""
        return self.file_transfer_url or self.base_url


class UnionPayCredentials(CredentialsBase):
    """A merchant's UnionPay secrets. The signing key never shows in a repr."""

    mer_id: str = Field(pattern=r"^[0-9A-Za-z]{15}$")
    signing_key: SecretStr
    signing_cert: str
    middle_cert: str
    root_cert: str

    _key: rsa.RSAPrivateKey = PrivateAttr()
    _signing: x509.Certificate = PrivateAttr()
    _middle: x509.Certificate = PrivateAttr()
    _root: x509.Certificate = PrivateAttr()

    @model_validator(mode="after")
    def _load(self) -> UnionPayCredentials:
        # Parsed once here: loading an RSA private key checks it, which takes tens of ms.
        self._key = parse_pem("signing_key", load_private_key, self.signing_key.get_secret_value())
        self._signing, self._middle, self._root = (
            parse_pem(name, load_certificate, getattr(self, name))
            for name in ("signing_cert", "middle_cert", "root_cert")
        )
        if public_key(self._signing).public_numbers() != self._key.public_key().public_numbers():
            raise pem_error("signing_cert", "does not hold the public half of signing_key")
        try:
            self._middle.verify_directly_issued_by(self._root)
        except (ValueError, TypeError, InvalidSignature):
            raise pem_error("middle_cert", "is not issued by root_cert") from None
        return self

    @property
    def signing_key_object(self) -> rsa.RSAPrivateKey:
        return self._key

    @property
    def cert_id(self) -> str:
        """`certId`: the decimal serial number of the merchant's signing certificate."""
        return cert_id(self._signing)

    @property
    def signing_certificate(self) -> x509.Certificate:
        return self._signing

    @property
    def middle(self) -> x509.Certificate:
        return self._middle

    @property
    def root(self) -> x509.Certificate:
        return self._root


load_credentials = UnionPayCredentials.load
"""Read and validate a credential bundle. Raises `CredentialsError`."""
