"""The operators' routing file (`config/routing.yaml`): loading, validation, precise errors.

An invalid file is refused with one message per problem, each naming the file, the line, the
path inside the document and what is wrong, for example:

    config/routing.yaml:7: accounts.wechat_main.base_url: Field required
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.alipay.config import AlipayAccount
from channels.unionpay.config import UnionPayAccount
from channels.wechat.config import WeChatAccount
from router.health import BreakerSettings, HealthSettings
from router.rules import AccountName, Defaults, Rule

AccountConfig = Annotated[
    WeChatAccount | AlipayAccount | UnionPayAccount, Field(discriminator="type")
]
"""One channel account; its `type` (wechat, alipay, unionpay) picks the schema."""


class RoutingConfig(BaseModel):
    """The whole routing file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    accounts: Annotated[dict[AccountName, AccountConfig], Field(min_length=1)]
    rules: list[Rule] = Field(default_factory=list)
    defaults: Defaults = Defaults()
    health: HealthSettings = HealthSettings()
    breaker: BreakerSettings = BreakerSettings()


def _cross_check(config: RoutingConfig) -> list[tuple[tuple[int | str, ...], str]]:
    """What one section says about another (pydantic checks each section alone)."""
    problems: list[tuple[tuple[int | str, ...], str]] = []
    seen: set[str] = set()
    for i, rule in enumerate(config.rules):
        if rule.name in seen:
            problems.append((("rules", i, "name"), f"rule name {rule.name!r} is used twice"))
        seen.add(rule.name)
        for j, name in enumerate(rule.accounts):
            if name not in config.accounts:
                problems.append((("rules", i, "accounts", j), f"no account named {name!r}"))
    if config.breaker.max_open_s < config.breaker.open_s:
        problems.append((("breaker", "max_open_s"), "must be at least open_s"))
    return problems


class ConfigError(ValueError):
    """A routing file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class LoadedConfig:
    config: RoutingConfig
    path: Path
    base_dir: Path
    """Credential files named in the config are relative to the config file's folder."""
    digest: str
    """sha256 of the file's bytes, shown as the version in force."""


def load_config(path: Path) -> LoadedConfig:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        node = yaml.compose(text.decode("utf-8"), Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"{path}: not valid YAML: {exc}"]) from None
    if not isinstance(document, dict):
        raise ConfigError(path, [f"{path}:1: the document must be a mapping"])
    try:
        config = RoutingConfig.model_validate(document)
    except ValidationError as exc:
        found = [(_document_path(tuple(e["loc"])), str(e["msg"])) for e in exc.errors()]
        raise ConfigError(path, [_describe(path, node, loc, msg) for loc, msg in found]) from None
    cross = _cross_check(config)
    if cross:
        raise ConfigError(path, [_describe(path, node, loc, msg) for loc, msg in cross])
    return LoadedConfig(
        config=config,
        path=path,
        base_dir=path.resolve().parent,
        digest=hashlib.sha256(text).hexdigest()[:12],
    )


ACCOUNT_TYPES = ("wechat", "alipay", "unionpay")


def _document_path(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """pydantic names the union member it tried (`accounts.x.wechat.base_url`); operators
    need the path in their file (`accounts.x.base_url`)."""
    if len(loc) > 2 and loc[0] == "accounts" and loc[2] in ACCOUNT_TYPES:
        return loc[:2] + loc[3:]
    return loc


def _describe(path: Path, node: Any, loc: tuple[int | str, ...], message: str) -> str:
    where = ".".join(str(part) for part in loc) or "(document)"
    return f"{path}:{_line_of(node, loc)}: {where}: {message}"


def _line_of(node: Any, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the deepest YAML node on `loc` that exists."""
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line
