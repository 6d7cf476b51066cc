"""Redis URLs in messages and logs never show a password, in the authority or the query."""

from __future__ import annotations

import pytest

from router.settings import redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://user:pw@h/1", "redis://user:***@h/1"),
        ("redis://h/0?password=pw&db=1", "redis://h/0?password=***&db=1"),
        ("redis://h/0?db=1&PASSWORD=pw", "redis://h/0?db=1&PASSWORD=***"),
        ("redis://h/0?socket_timeout=5", "redis://h/0?socket_timeout=5"),
        ("redis://[/0", "(unparsable URL)"),
    ],
)
def test_passwords_are_never_shown(url: str, shown: str) -> None:
    assert redacted(url) == shown
