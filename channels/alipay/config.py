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

from pathlib import Path
from typing import ClassVar, Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    model_validator,
)

from channels.alipay.crypto import load_private_key, load_public_key
from channels.alipay.protocol.wire import GATEWAY_PATH
from channels.base import METHODS, Method
from channels.credentials import (
    AccountBase,
    CredentialsError,
    CredentialsRef,
    TimeoutsConfig,
    load_validated,
    pem_error,
)

__all__ = [
    "SUPPORTED_METHODS",
    "AlipayAccount",
    "AlipayCredentials",
    "CredentialsError",
    "CredentialsRef",
    "TimeoutsConfig",
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


class AlipayCredentials(BaseModel):
    """An Alipay app's keys (public-key mode). The private key never shows in a repr.

    Build it with `model_validate` (not `model_copy(update=...)`, which skips validation and
    would keep the previously parsed keys).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = Field(pattern=r"^[0-9]{16}$")
    app_private_key: SecretStr
    alipay_public_key: str

    _app_key: rsa.RSAPrivateKey = PrivateAttr()
    _alipay_key: rsa.RSAPublicKey = PrivateAttr()

    @model_validator(mode="after")
    def _load_keys(self) -> AlipayCredentials:
        # Parsed once here: loading an RSA private key checks it, which takes tens of ms.
        try:
            self._app_key = load_private_key(self.app_private_key.get_secret_value())
        except ValueError as exc:
            raise pem_error("app_private_key", str(exc)) from None
        try:
            self._alipay_key = load_public_key(self.alipay_public_key)
        except ValueError as exc:
            raise pem_error("alipay_public_key", str(exc)) from None
        return self

    @property
    def app_key(self) -> rsa.RSAPrivateKey:
        return self._app_key

    @property
    def alipay_key(self) -> rsa.RSAPublicKey:
        return self._alipay_key

    def bundle(self) -> dict[str, str]:
        """The JSON bundle, secret included: only for sandbox files and `/sim/accounts`."""
        return {
            "app_id": self.app_id,
            "app_private_key": self.app_private_key.get_secret_value(),
            "alipay_public_key": self.alipay_public_key,
        }


def load_credentials(ref: CredentialsRef, base_dir: Path) -> AlipayCredentials:
    """Read and validate a credential bundle. Raises `CredentialsError`."""
    return load_validated(ref, base_dir, AlipayCredentials)
