"""The operators' routing file (`config/routing.yaml`): loading, validation, precise errors.

An invalid file is refused with one message per problem, each naming the file, the line, the
path inside the document and what is wrong, for example:

    config/routing.yaml:7: accounts.wechat_main.base_url: Field required
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from channels.credentials import AccountBase, CredentialsError
from channels.registry import REGISTRY
from router.config_file import FileProblems, Problem, describe, read_yaml, schema_problems
from router.routing.adaptive import AdaptiveSettings
from router.routing.health import BreakerSettings, HealthSettings
from router.routing.rules import AccountName, Defaults, Rule

if TYPE_CHECKING:
    AccountConfig = AccountBase
else:
    AccountConfig = Annotated[
        Union[tuple(spec.account for spec in REGISTRY.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]
"""One channel account; its `type` (a key of `channels.registry.REGISTRY`) picks the schema."""
_ACCOUNT: TypeAdapter[AccountConfig] = TypeAdapter(AccountConfig)


class RoutingConfig(BaseModel):
    """The whole routing file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    accounts: Annotated[dict[AccountName, AccountConfig], Field(min_length=1)]
    rules: list[Rule] = Field(default_factory=list)
    defaults: Defaults = Defaults()
    health: HealthSettings = HealthSettings()
    breaker: BreakerSettings = BreakerSettings()
    adaptive: AdaptiveSettings = AdaptiveSettings()
    fees: dict[AccountName, Annotated[float, Field(ge=0, le=10)]] = Field(default_factory=dict)
    """Each account's fee, percent of the amount (the `adaptive` strategy weighs it)."""


def _references(document: dict[str, Any]) -> list[Problem]:
    """What one section says about another, read from the raw document so that these are
    reported beside schema errors (a file that fails validation has no model to look at)."""
    problems: list[Problem] = []
    accounts = document.get("accounts")
    names = set(accounts) if isinstance(accounts, dict) else None
    fees = document.get("fees")
    for name in fees if isinstance(fees, dict) else ():
        if names is not None and name not in names:
            problems.append((("fees", name), f"no account named {name!r}"))
    rules = document.get("rules")
    seen: set[str] = set()
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        name = rule.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append((("rules", i, "name"), f"rule name {name!r} is used twice"))
            seen.add(name)
        refs = rule.get("accounts")
        if names is None or not isinstance(refs, list):
            continue
        for j, ref in enumerate(refs):
            if isinstance(ref, str) and ref not in names:
                problems.append((("rules", i, "accounts", j), f"no account named {ref!r}"))
    return problems


def _cross_check(config: RoutingConfig) -> list[Problem]:
    """Checks between fields of a section that validated."""
    if config.breaker.max_open_s < config.breaker.open_s:
        return [(("breaker", "max_open_s"), "must be at least open_s")]
    return []


class ConfigError(FileProblems):
    """A routing file that cannot be used; `problems` holds one line per problem."""

    check_command = "payrouter routes check"

    def __init__(
        self, path: Path, problems: list[str], credential_problems: list[str] | None = None
    ) -> None:
        super().__init__(path, problems)
        self.credential_problems = credential_problems or []
        """For `routes check`: problems with the credentials of the accounts that are valid
        on their own, found while the file as a whole is not."""


@dataclass(frozen=True)
class LoadedConfig:
    config: RoutingConfig
    path: Path
    base_dir: Path
    """Credential files named in the config are relative to the config file's folder."""
    digest: str
    """sha256 of the file's bytes, shown as the version in force."""
    node: Any = field(default=None, repr=False, compare=False)
    """The YAML node tree, to name the line of a problem found after loading."""

    def describe(self, loc: tuple[int | str, ...], message: str) -> str:
        """`file:line: path.in.document: message`."""
        return describe(self.path, self.node, loc, message)


def load_config(path: Path) -> LoadedConfig:
    read = read_yaml(path, ConfigError)
    node, document = read.node, read.document
    found = _references(document)
    config: RoutingConfig | None = None
    try:
        config = RoutingConfig.model_validate(document)
    except ValidationError as exc:
        found = [(_document_path(loc), msg) for loc, msg in schema_problems(exc)] + found
    else:
        found += _cross_check(config)
    if found or config is None:
        refused = read.refuse(found, ConfigError)
        raise ConfigError(
            path, refused.problems, _credential_problems(path, node, _valid_accounts(document))
        )
    return LoadedConfig(
        config=config,
        path=path,
        base_dir=path.resolve().parent,
        digest=read.digest,
        node=node,
    )


def credential_problems(loaded: LoadedConfig) -> list[str]:
    """One `file:line: ...` line per account whose credentials cannot be loaded as they are
    now (file missing or unreadable, variable unset, bundle invalid)."""
    return _credential_problems(loaded.path, loaded.node, loaded.config.accounts)


def _valid_accounts(document: dict[str, Any]) -> dict[str, AccountConfig]:
    """The accounts of a file that failed validation that are valid on their own."""
    accounts = document.get("accounts")
    valid: dict[str, AccountConfig] = {}
    for name, raw in accounts.items() if isinstance(accounts, dict) else ():
        try:
            valid[str(name)] = _ACCOUNT.validate_python(raw)
        except ValidationError:
            continue
    return valid


def _credential_problems(path: Path, node: Any, accounts: Mapping[str, AccountConfig]) -> list[str]:
    base_dir = path.resolve().parent
    problems = []
    for name, account in accounts.items():
        ref = account.credentials
        try:
            REGISTRY[account.type].load_credentials(ref, base_dir)
        except CredentialsError as exc:
            where = ("accounts", name, "credentials", "file" if ref.file is not None else "env")
            problems.append(describe(path, node, where, str(exc)))
    return problems


def _document_path(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """pydantic names the union member it tried (`accounts.x.wechat.base_url`); operators
    need the path in their file (`accounts.x.base_url`)."""
    if len(loc) > 2 and loc[0] == "accounts" and loc[2] in REGISTRY:
        return loc[:2] + loc[3:]
    return loc
