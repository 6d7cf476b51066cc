"""Which webhook URLs are accepted: syntax in every mode, public hosts only in live mode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from router.models import CreatePaymentRequest
from router.urls import check_live_url, live_url_problem, public_address, url_problem


@pytest.mark.parametrize(
    "url",
    [
        "http://[/hook",
        "https://[::1/hook",
        "http://host:99999/x",
        "http://host:port/x",
        "ftp://example.com/x",
        "http:///no-host",
        "https://user:pw@example.com/x",
        "https://exa mple.com/x",
        "https://example.com/\x00",
        "https://bücher.example/x",
    ],
)
def test_malformed_urls_are_refused_in_every_mode(url: str) -> None:
    assert url_problem(url) is not None
    assert live_url_problem(url) is not None


def test_a_malformed_notify_url_is_a_validation_error_naming_the_field() -> None:
    body = {
        "amount": 1,
        "merchant_order_id": "A1",
        "description": "d",
        "method": "qr",
        "notify_url": "http://[/hook",
    }
    with pytest.raises(ValidationError) as caught:
        CreatePaymentRequest.model_validate(body)
    assert caught.value.errors()[0]["loc"] == ("notify_url",)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "169.254.169.254",
        "192.0.2.10",  # documentation
        "198.18.0.1",  # benchmarking
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not public_address(address)
    host = f"[{address}]" if ":" in address else address
    assert live_url_problem(f"https://{host}/hook") is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert public_address(address)
    host = f"[{address}]" if ":" in address else address
    assert live_url_problem(f"https://{host}/hook") is None


def test_live_mode_wants_https() -> None:
    assert live_url_problem("http://8.8.8.8/hook") == "live-mode webhook URLs must use https"


async def test_live_check_resolves_names() -> None:
    assert await check_live_url("https://localhost/hook") is not None
    assert await check_live_url("https://does-not-exist.invalid/hook") is not None
    assert await check_live_url("https://[::1/hook") is not None
    assert await check_live_url("https://8.8.8.8/hook") is None
