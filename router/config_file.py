"""Operators' YAML files (`config/routing.yaml`, `config/risk.yaml`): reading, and problems
named by `file:line: path.in.document: message`.

Each file's own module defines its schema and checks; this one reads the bytes, keeps the YAML
node tree to find the line of any path in the document, and gathers the problems into one
`FileProblems` so that every file is refused the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import ValidationError

from router.settings import ConfigurationError

Problem = tuple[tuple[int | str, ...], str]
"""Where in the document (`("rules", 0, "accounts", 1)`) and what is wrong."""


class FileProblems(ConfigurationError, ValueError):
    """An operator's file that cannot be used; `problems` holds one line per problem."""

    check_command: ClassVar[str] = "payrouter routes check"
    """What shows every problem of such a file (named when there is more than one)."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))

    def line(self) -> str:
        """The first problem, and where to see the others."""
        more = len(self.problems) - 1
        if more <= 0:
            return self.problems[0]
        plural = "s" if more > 1 else ""
        return (
            f"{self.problems[0]} (and {more} more problem{plural}: "
            f"{self.check_command} {self.path})"
        )


@dataclass(frozen=True)
class YamlFile:
    """A file's document, its node tree (for lines) and the digest of its bytes."""

    path: Path
    document: dict[str, Any]
    node: Any
    digest: str

    def describe(self, loc: tuple[int | str, ...], message: str) -> str:
        """`file:line: path.in.document: message`."""
        return describe(self.path, self.node, loc, message)

    def refuse(self, found: list[Problem], error: type[FileProblems]) -> FileProblems:
        """`error` naming every problem, in the order of their lines."""
        ordered = sorted(found, key=lambda problem: line_of(self.node, problem[0]))
        return error(self.path, [self.describe(loc, msg) for loc, msg in ordered])


def read_yaml(path: Path, error: type[FileProblems]) -> YamlFile:
    """Read `path` as a YAML mapping; raises `error` (one line) when it is not one."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise error(path, [f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        node = yaml.compose(text.decode("utf-8"), Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise error(path, [f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        what = " ".join(f"{exc.context or ''} {exc.problem or ''}".split())
        raise error(path, [f"{path}:{line}: not valid YAML: {what}"]) from None
    except yaml.YAMLError as exc:
        raise error(path, [f"{path}: not valid YAML: {' '.join(str(exc).split())}"]) from None
    if not isinstance(document, dict):
        raise error(path, [f"{path}:1: the document must be a mapping"])
    return YamlFile(path, document, node, hashlib.sha256(text).hexdigest()[:12])


def schema_problems(exc: ValidationError) -> list[Problem]:
    """pydantic's errors as problems."""
    return [(tuple(e["loc"]), str(e["msg"])) for e in exc.errors()]


def describe(path: Path, node: Any, loc: tuple[int | str, ...], message: str) -> str:
    """`file:line: path.in.document: message`, the line being that of the deepest node of
    `loc` the file has."""
    where = ".".join(str(part) for part in loc) or "(document)"
    return f"{path}:{line_of(node, loc)}: {where}: {message}"


def line_of(node: Any, loc: tuple[int | str, ...]) -> int:
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
