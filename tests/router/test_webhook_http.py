"""What the dispatcher reads from receivers and shows of URLs: never an exception."""

from __future__ import annotations

import pytest

from router.clock import FrozenClock
from router.webhooks.delivery import retry_after, shown_url


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 0.0),
        ("", 0.0),
        ("7", 7.0),
        (" 12 ", 12.0),
        ("\u00b2", 0.0),  # a Unicode digit: str.isdigit() is True, float() fails
        ("\u0661\u0662", 0.0),  # Arabic-Indic digits: float() would accept them
        ("1e3", 0.0),
        ("inf", 0.0),
        ("nan", 0.0),
        ("-5", 0.0),
        ("9" * 40, 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("Wed, 99 Oct 2015 07:28:00 GMT", 0.0),
        ("\x00", 0.0),
    ],
)
def test_retry_after_never_raises(value: str | None, seconds: float) -> None:
    assert retry_after(value, FrozenClock()) == seconds


def test_retry_after_an_http_date_counts_from_the_injected_clock() -> None:
    clock = FrozenClock(start=1_800_000_000.0)  # 2027-01-15T08:00:00Z
    later = "Fri, 15 Jan 2027 08:00:30 GMT"
    assert retry_after(later, clock) == 30.0
    clock.advance(20)
    assert retry_after(later, clock) == 10.0
    clock.advance(60)
    assert retry_after(later, clock) == 0.0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://shop.example/hooks?token=abc#frag", "https://shop.example/hooks"),
        ("https://user:pass@shop.example:8443/h", "https://shop.example:8443/h"),
        ("http://[/hook", "http://[/hook"),
        ("https://[::1/hook?x=1", "https://[::1/hook"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_shown_url_drops_query_and_credentials(url: str, shown: str) -> None:
    assert shown_url(url) == shown
