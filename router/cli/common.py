"""What every `payrouter` verb shares: settings, the event loop, output, the store, checks.

Verbs raise `router.settings.ConfigurationError` for anything the operator must fix; the
top-level group (`router.cli.main`) turns it into one line on stderr and exit code 2.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from router.clock import Clock
from router.ids import MERCHANT_ID
from router.settings import ConfigurationError, Settings
from router.store import Store, open_store

T = TypeVar("T")


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` that also refuses `nan` (which compares false with both bounds, so
    FloatRange lets it through) and `inf`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def load_settings() -> Settings:
    """The environment's settings; raises `SettingsError` (shown as one line, exit 2)."""
    return Settings.from_env()


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """Run a verb's coroutine to the end; Ctrl-C is exit code 130, without a traceback."""
    try:
        return asyncio.run(main())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def emit(data: Any, as_json: bool, text: str) -> None:
    """Print a verb's answer: `data` as JSON with `--json`, else the human-readable `text`."""
    click.echo(json.dumps(data, indent=2) if as_json else text)


async def with_store(step: Callable[[Store], Awaitable[T]]) -> T:
    """Run `step` against the Redis store named by PAYROUTER_REDIS_URL, closed afterwards."""
    settings = load_settings()
    if settings.redis_url is None:
        raise ConfigurationError(
            "merchant commands need PAYROUTER_REDIS_URL: the embedded store lives inside a "
            "running `payrouter dev`, which keeps its own sandbox merchant"
        )
    store = await open_store(settings.redis_url, Clock(), settings.secret_key)
    try:
        return await step(store)
    finally:
        await store.close()


def valid_merchant_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A MERCHANT_ID argument: refused before any store is opened unless it has the shape
    every merchant id has (`mch_` and 8 to 64 letters or digits)."""
    if not MERCHANT_ID.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a merchant id (mch_ and letters or digits)")
    return value


def not_blank(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An option or argument that must hold something other than whitespace, when given."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return value
