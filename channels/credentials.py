"""Where a channel account's secrets come from, shared by every channel's config.

The routing config never holds a secret itself: each account names a JSON bundle either as a
file (relative to the config file's folder) or as an environment variable holding the same
JSON. Loading errors name the file or variable and the field, never a secret's value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from channels.base import Method, Wallet
from channels.http import Timeouts

_Model = TypeVar("_Model", bound=BaseModel)
_Parsed = TypeVar("_Parsed")


class CredentialsError(ValueError):
    """Credentials that cannot be loaded; the message names the source and the field."""


class CredentialsRef(BaseModel):
    """Exactly one of `file` (a JSON file) or `env` (a variable holding the JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialsRef:
        if (self.file is None) == (self.env is None):
            raise ValueError("credentials need exactly one of 'file' or 'env'")
        return self

    def describe(self, base_dir: Path) -> str:
        """Where the bundle comes from, for messages."""
        if self.file is not None:
            return f"credentials file {self.path(base_dir)}"
        return f"credentials environment variable {self.env}"

    def path(self, base_dir: Path) -> Path:
        assert self.file is not None
        return (base_dir / Path(self.file).expanduser()).resolve()


class TimeoutsConfig(BaseModel):
    """Per-account time limits in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect: float = Field(2.0, gt=0, le=60)
    total: float = Field(10.0, gt=0, le=300)

    def to_timeouts(self) -> Timeouts:
        return Timeouts(connect=self.connect, total=self.total)


def read_bundle(ref: CredentialsRef, base_dir: Path) -> dict[str, Any]:
    """The JSON object `ref` points at. Raises `CredentialsError`."""
    source = ref.describe(base_dir)
    if ref.file is not None:
        try:
            text = ref.path(base_dir).read_text(encoding="utf-8")
        except OSError as exc:
            raise CredentialsError(f"{source}: cannot read ({exc.strerror})") from None
    else:
        assert ref.env is not None
        value = os.environ.get(ref.env)
        if not value:
            raise CredentialsError(f"{source} is not set")
        text = value
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position is safe to show; the text around it may be a secret.
        raise CredentialsError(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise CredentialsError(f"{source}: must hold a JSON object")
    return data


def describe_validation_error(source: str, exc: ValidationError) -> CredentialsError:
    """A `CredentialsError` naming each bad field, without echoing any input value."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field_name = ".".join(str(part) for part in error["loc"]) or "(bundle)"
        problems.append(f"{field_name}: {error['msg']}")
    return CredentialsError(f"{source}: " + "; ".join(problems))


def load_validated(ref: CredentialsRef, base_dir: Path, model: type[_Model]) -> _Model:
    """Read the bundle `ref` points at and validate it as `model`. Raises `CredentialsError`."""
    data = read_bundle(ref, base_dir)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(ref.describe(base_dir), exc) from None


def pem_error(field_name: str, problem: str) -> PydanticCustomError:
    """A validation error for a key or certificate field that does not parse or match."""
    return PydanticCustomError(
        "pem", "{field}: {problem}", {"field": field_name, "problem": problem}
    )


def parse_pem(field_name: str, parse: Callable[[str], _Parsed], text: str) -> _Parsed:
    """`parse(text)`; its `ValueError` becomes the validation error naming `field_name`.

    For a credential model's validator, which parses its keys and certificates once.
    """
    try:
        return parse(text)
    except ValueError as exc:
        raise pem_error(field_name, str(exc)) from None


class CredentialsBase(BaseModel):
    """What every channel's credential bundle shares: strict, frozen, loaded from a
    `CredentialsRef` and written back as the same JSON. Fields are `str` or `SecretStr`.

    Build one with `model_validate` (not `model_copy(update=...)`, which skips validation and
    would keep the previously parsed keys).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def load(cls, ref: CredentialsRef, base_dir: Path) -> Self:
        """Read and validate the bundle `ref` points at. Raises `CredentialsError`."""
        return load_validated(ref, base_dir, cls)

    def bundle(self) -> dict[str, str]:
        """The JSON bundle, secrets included: only for sandbox files and `/sim/accounts`."""
        out = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            out[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return out


class AccountBase(BaseModel):
    """What every channel account in the routing config has in common.

    Each channel subclasses it, narrowing `type` to its `Literal` (the routing config's
    discriminator) and setting `channel_name` and `supported_methods`. An overridden `type`
    keeps its place as the first field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel_name: ClassVar[str]
    """The channel as messages name it (`WeChat Pay`)."""
    supported_methods: ClassVar[frozenset[Method]]

    type: Wallet
    base_url: str
    livemode: bool = False
    credentials: CredentialsRef
    timeouts: TimeoutsConfig = TimeoutsConfig()
    methods: frozenset[Method] | None = None
    """A subset of the methods the channel offers; absent: all of them."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or "?" in value:
            raise ValueError("base_url must be an http(s) URL without a query")
        return cls._normalise_base_url(value.rstrip("/"))

    @classmethod
    def _normalise_base_url(cls, value: str) -> str:
        """A channel's own rules for `base_url`, after the shared ones; raise `ValueError`."""
        return value

    @field_validator("methods")
    @classmethod
    def _supported(cls, value: frozenset[Method] | None) -> frozenset[Method] | None:
        if value is not None:
            unsupported = sorted(value - cls.supported_methods)
            if unsupported:
                raise ValueError(f"{cls.channel_name} does not offer {', '.join(unsupported)}")
            if not value:
                raise ValueError("methods must not be empty")
        return value
