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
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from channels.alipay.crypto import load_private_key, load_public_key
from channels.alipay.protocol import GATEWAY_PATH
from channels.base import METHODS, Method
from channels.credentials import (
    CredentialsError,
    CredentialsRef,
    TimeoutsConfig,
    describe_validation_error,
    read_bundle,
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


class AlipayAccount(BaseModel):
    """One Alipay app in the routing config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["alipay"]
    base_url: str
    """The gateway's base (`https://openapi.alipay.com`); a trailing `/gateway.do` is dropped."""
    livemode: bool = False
    credentials: CredentialsRef
    timeouts: TimeoutsConfig = TimeoutsConfig()
    methods: frozenset[Method] | None = None
    """A subset of the methods Alipay offers; absent: all of them."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError("base_url must be an http(s) URL without a query")
        value = value.rstrip("/")
        # Alipay's documentation names the full gateway URL; operators paste it as is.
        return value.removesuffix(GATEWAY_PATH)

    @field_validator("methods")
    @classmethod
    def _supported(cls, value: frozenset[Method] | None) -> frozenset[Method] | None:
        if value is not None and not value:
            raise ValueError("methods must not be empty")
        return value

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
            raise PydanticCustomError(
                "pem", "app_private_key: {problem}", {"problem": str(exc)}
            ) from None
        try:
            self._alipay_key = load_public_key(self.alipay_public_key)
        except ValueError as exc:
            raise PydanticCustomError(
                "pem", "alipay_public_key: {problem}", {"problem": str(exc)}
            ) from None
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
    data = read_bundle(ref, base_dir)
    try:
        return AlipayCredentials.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(ref.describe(base_dir), exc) from None
