"""The running-state scaffolding every channel simulator shares.

Each channel's `sim.state` module decides what its protocol does; underneath, all three keep
the same things: the settings, one seeded random generator (ids, codes and fault dice drawn
from it make a seeded run repeatable), the `FaultBox`, a `Notifier` on the channel's retry
schedule, the sandbox accounts, and background timers (automatic payments, password entry,
refund endings) that must be cancelled when the application stops. `SimulatorCore` holds
those; a channel subclasses it and says only how its sandbox account is loaded and keyed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from aiohttp import web

from channels.sim.kit import (
    Delivery,
    FaultBox,
    HeaderFactory,
    Notifier,
    SimulatorSettings,
    SuccessTest,
)

AccountT = TypeVar("AccountT")


class SimulatorCore(Generic[AccountT]):
    """Settings, dice, faults, notifier, accounts and timers of one running simulator."""

    def __init__(
        self,
        settings: SimulatorSettings,
        *,
        schedule: Sequence[float],
        success: SuccessTest,
        attempt_timeout: float = 5.0,
    ) -> None:
        self.settings = settings
        self.rng = settings.make_rng()
        self.faults = FaultBox(self.rng)
        self.notifier = Notifier(
            schedule=schedule,
            success=success,
            time_factor=settings.time_factor,
            attempt_timeout=attempt_timeout,
        )
        self.accounts: dict[str, AccountT] = {}
        self._timers: set[asyncio.Task[None]] = set()

    def load_account(self, index: int = 0) -> AccountT:
        """The `index`-th sandbox account, made on first start and reloaded after (runs in a
        thread)."""
        raise NotImplementedError

    def account_id(self, account: AccountT) -> str:
        """The id requests name the account by (mchid, app_id, merId)."""
        raise NotImplementedError

    def default_account(self) -> AccountT:
        """The first sandbox account (answers that name no account are signed with it)."""
        return next(iter(self.accounts.values()))

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background; it is cancelled when the simulator stops."""
        task = asyncio.create_task(work)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def submit_notification(
        self, notification_id: str, url: str, body: bytes, headers: HeaderFactory
    ) -> list[Delivery]:
        """Post a notification on the retry schedule, delayed, duplicated or dropped as the
        notification faults in force say."""
        faults = self.faults.faults
        return self.notifier.submit(
            notification_id,
            url,
            body,
            headers,
            delay=faults.notify_delay_ms / 1000,
            duplicates=faults.duplicate_notifications,
            drop_first=faults.drop_notifications,
        )

    async def on_shutdown(self, app: web.Application) -> None:
        """For `app.on_shutdown`: end injected hangs before the server waits for handlers."""
        self.faults.stopping.set()

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """For `app.cleanup_ctx`: load sandbox keys, run the notifier, stop everything."""
        for index in range(self.settings.accounts):
            account = await asyncio.to_thread(self.load_account, index)
            self.accounts[self.account_id(account)] = account
        async with self.notifier:
            yield
            await self.on_shutdown(app)
            timers = list(self._timers)
            for task in timers:
                task.cancel()
            await asyncio.gather(*timers, return_exceptions=True)
