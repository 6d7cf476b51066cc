"""The floor: the least work any router must do per QR payment, as its own aiohttp process.

One handler, `POST /v1/payments`, does only what cannot be avoided: parse the JSON body,
build and sign one WeChat Pay request with the adapter's protocol code, send it to the
simulator, verify the signed answer, and write one Redis hash (a single HSET). No
authentication, idempotency, routing, validation models, metrics or status scripts: the
router's CPU per payment divided by this one's is how much the router adds on top.

    python -m benchmarks.harness.floor --port PORT --redis-url URL --routing FILE --account NAME

Prints `ready` on stdout once it listens; serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import click
from aiohttp import web

from channels.base import CreateOrder
from channels.clock import Clock
from channels.wechat import adapter as wechat
from channels.wechat.config import WeChatAccount
from router.cli.serving import start_site, wait_for_stop
from router.routing.config import load_config
from router.store import RedisClient, redis_client

FLOOR_KEY_PREFIX = "bench:floor:"
"""Keys the floor writes, apart from everything the router owns (`pr:...`)."""


class Floor:
    """The floor's state: one channel adapter, one Redis client, an order counter."""

    def __init__(self, channel: wechat.WeChatChannel, redis: RedisClient, notify_url: str) -> None:
        self.channel = channel
        self.redis = redis
        self.notify_url = notify_url
        self._counter = itertools.count()
        self._tag = f"{os.getpid():x}"

    async def create(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        order_no = f"fl{self._tag}x{next(self._counter)}"
        now = datetime.now(UTC)
        result = await self.channel.create(
            CreateOrder(
                order_no=order_no,
                created_at=now,
                amount=int(body["amount"]),
                currency=str(body.get("currency", "CNY")),
                method="qr",
                description=str(body["description"]),
                notify_url=self.notify_url,
            )
        )
        qr_code = result.action.qr_code or ""
        await self.redis.hset(
            FLOOR_KEY_PREFIX + order_no,
            mapping={"amount": body["amount"], "status": "pending", "qr_code": qr_code},
        )
        return web.json_response({"id": order_no, "qr_code": qr_code}, status=201)


def load_channel(
    routing: Path, account: str, session: aiohttp.ClientSession
) -> wechat.WeChatChannel:
    """The WeChat Pay adapter for `account` in a routing file (the router's own credentials)."""
    loaded = load_config(routing)
    config = loaded.config.accounts.get(account)
    if not isinstance(config, WeChatAccount):
        raise click.ClickException(f"{routing}: {account} is not a WeChat Pay account")
    return wechat.build(account, config, loaded.base_dir, session, Clock())


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--redis-url", required=True)
@click.option("--routing", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--account", default="wechat_main", show_default=True)
def main(port: int, host: str, redis_url: str, routing: Path, account: str) -> None:
    """Serve the floor handler until SIGTERM or SIGINT."""

    async def run() -> None:
        session = aiohttp.ClientSession()
        redis = redis_client(redis_url)
        floor = Floor(load_channel(routing, account, session), redis, f"http://{host}:{port}/n")
        app = web.Application()
        app.router.add_post("/v1/payments", floor.create)
        runner = await start_site(app, host, port)
        click.echo("ready")
        sys.stdout.flush()
        try:
            await wait_for_stop()
        finally:
            await runner.cleanup()
            await session.close()
            await redis.aclose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
