"""An Alipay account as the routing config names it, and its credential bundle.

Routing config entry (YAML)::

    alipay_main:
      type: alipay
      base_url: http://127.0.0.1:8092      # the gateway's base; requests go to /gateway.do
      credentials: {file: ../.sandbox/alipay/2021000000000001.json}
      timeouts: {connect: 2, total: 10}
      methods: [qr, web]                   # optional subset

The credential bundle is one entry of the simulator's `GET /sim/accounts` answer (and the
sandbox file `<sandbox_dir>/alipay/2021000000000001.json`)::

    {"app_id", "app_private_key", "alipay_public_key"}

Keys are PEM or, as Alipay's console shows them, the bare base64 key body.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    model_validator,
)

from channels.alipay.crypto import load_private_key, load_public_key
from channels.alipay.protocol.wire import GATEWAY_PATH
from channels.base import METHODS, Method
from channels.credentials import AccountBase, CredentialsBase, parse_pem

__all__ = [
    "SUPPORTED_METHODS",
    "AlipayAccount",
    "AlipayCredentials",
    "load_credentials",
]

SUPPORTED_METHODS: frozenset[Method] = frozenset(METHODS)


class AlipayAccount(AccountBase):
    """One Alipay app in the routing config."""

    channel_name: ClassVar[str] = "Alipay"
    supported_methods: ClassVar[frozenset[Method]] = SUPPORTED_METHODS

    type: Literal["alipay"]

    @classmethod
    def _normalise_base_url(cls, value: str) -> str:
        """`base_url` is the gateway's base (`https://openapi.alipay.com`): drop `/gateway.do`."""
        # Requests append the gateway path and a query; a fragment would swallow both.
        if "#" in value:
            raise ValueError("base_url must be an http(s) URL without a query")
        # Alipay's documentation names the full gateway URL; operators paste it as is.
        return value.removesuffix(GATEWAY_PATH)

    @property
    def gateway(self) -> str:
        return self.base_url + GATEWAY_PATH


class AlipayCredentials(CredentialsBase):
    """An Alipay app's keys (public-key mode). The private key never shows in a repr."""

    app_id: str = Field(pattern=r"^[0-9]{16}$")
    app_private_key: SecretStr
    alipay_public_key: str

    _app_key: rsa.RSAPrivateKey = PrivateAttr()
    _alipay_key: rsa.RSAPublicKey = PrivateAttr()

    @model_validator(mode="after")
    def _load_keys(self) -> AlipayCredentials:
        # Parsed once here: loading an RSA private key checks it, which takes tens of ms.
        self._app_key = parse_pem(
            "app_private_key", load_private_key, self.app_private_key.get_secret_value()
        )
        self._alipay_key = parse_pem("alipay_public_key", load_public_key, self.alipay_public_key)
        return self

    @property
    def app_key(self) -> rsa.RSAPrivateKey:
        return self._app_key

    @property
    def alipay_key(self) -> rsa.RSAPublicKey:
        return self._alipay_key


load_credentials = AlipayCredentials.load
"""Read and validate a credential bundle. Raises `CredentialsError`."""
