"""The documentation links only to itself: every relative link resolves inside the checkout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "sdk" / "README.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_stay_in_the_repository(doc: Path) -> None:
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
        assert resolved.exists(), f"{doc.name} links to a missing file: {target}"


def test_readme_names_no_path_outside_the_repository() -> None:
    assert "../shared" not in (ROOT / "README.md").read_text(encoding="utf-8")


def test_architecture_names_only_paths_that_exist() -> None:
    # The map must follow the files when they move. Paths in backticks are from the checkout
    # or from router/; `<wallet>` stands for each wallet.
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w<>./]+/[\w<>./]*)`", text))
    assert "router/cli/main.py" in named
    for path in named:
        for wallet in ("wechat", "alipay", "unionpay"):
            concrete = path.replace("<wallet>", wallet)
            assert (ROOT / concrete).exists() or (ROOT / "router" / concrete).exists(), path
