"""A WeChat Pay account as the routing config names it, and its credential bundle.

Routing config entry (YAML)::

    wechat_main:
      type: wechat
      base_url: http://127.0.0.1:8091
      credentials: {file: ../.sandbox/wechat/1900000001.json}
      timeouts: {connect: 2, total: 10}
      methods: [qr, h5]          # optional subset

The credential bundle is one entry of the simulator's `GET /sim/accounts` answer (and the
sandbox file `<sandbox_dir>/wechat/1900000001.json`)::

    {"mchid", "appid", "merchant_serial_no", "merchant_private_key",
     "platform_public_key_id", "platform_public_key", "apiv3_key", "app_secret"}

`app_secret` (the official account's AppSecret, optional) lets the hosted checkout learn a
buyer's openid through WeChat's web authorisation (`channels.wechat.protocol.oauth`).
"""

from __future__ import annotations

import hmac
from typing import ClassVar, Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from channels.base import Method
from channels.credentials import AccountBase, CredentialsBase, parse_pem
from channels.wechat.crypto import load_private_key, load_public_key

__all__ = [
    "SUPPORTED_METHODS",
    "WeChatAccount",
    "WeChatCredentials",
    "load_credentials",
]

SUPPORTED_METHODS: frozenset[Method] = frozenset({"qr", "h5", "jsapi", "app", "barcode"})


class WeChatAccount(AccountBase):
    """One WeChat Pay account in the routing config."""

    channel_name: ClassVar[str] = "WeChat Pay"
    supported_methods: ClassVar[frozenset[Method]] = SUPPORTED_METHODS

    type: Literal["wechat"]


class WeChatCredentials(CredentialsBase):
    """A merchant's WeChat Pay secrets (public-key mode). Secrets never show in a repr."""

    mchid: str = Field(pattern=r"^[0-9]{6,32}$")
    appid: str = Field(pattern=r"^wx[0-9A-Za-z]{16}$")
    merchant_serial_no: str = Field(pattern=r"^[0-9A-Fa-f]{8,64}$")
    merchant_private_key: SecretStr
    platform_public_key_id: str = Field(pattern=r"^PUB_KEY_ID_[0-9A-Za-z]+$")
    platform_public_key: str
    apiv3_key: SecretStr
    app_secret: SecretStr | None = None

    _merchant_key: rsa.RSAPrivateKey = PrivateAttr()
    _platform_key: rsa.RSAPublicKey = PrivateAttr()

    @field_validator("apiv3_key")
    @classmethod
    def _apiv3_key(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if len(key) != 32 or not key.isascii():
            raise ValueError("must be 32 ASCII characters")
        return value

    @model_validator(mode="after")
    def _load_keys(self) -> WeChatCredentials:
        # Parsed once here: loading an RSA private key checks it, which takes tens of ms.
        self._merchant_key = parse_pem(
            "merchant_private_key", load_private_key, self.merchant_private_key.get_secret_value()
        )
        self._platform_key = parse_pem(
            "platform_public_key", load_public_key, self.platform_public_key
        )
        return self

    def oauth_secret(self) -> str:
        """The AppSecret for web authorisation. A sandbox bundle written before bundles had
        one uses a secret derived from its APIv3 key, as the simulator does."""
        if self.app_secret is not None:
            return self.app_secret.get_secret_value()
        seed = hmac.new(self.apiv3_key.get_secret_value().encode(), b"app_secret", "sha256")
        return seed.hexdigest()[:32]

    @property
    def merchant_key(self) -> rsa.RSAPrivateKey:
        return self._merchant_key

    @property
    def platform_key(self) -> rsa.RSAPublicKey:
        return self._platform_key


load_credentials = WeChatCredentials.load
"""Read and validate a credential bundle. Raises `CredentialsError`."""
