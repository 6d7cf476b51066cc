"""Rate limits, velocity counters and the operators' risk lists in Redis.

A create is screened in one script in its merchant's slot (`{rk:mch}`, `keys.rate_bucket`):
it takes a token from each of the request's buckets (the merchant's, its API key's) and only
if every one had a token, counts the attempt in the velocity windows and reads them back.
A global ceiling (another slot) is a second call of the same script in the same round trip.
Reads and refunds run the same script with no windows.

Buckets are GCRA token buckets (`per_second` tokens back each second, `burst` at most): one
number per bucket, the theoretical arrival time of the next request. Velocity windows are
`BUCKETS` time buckets kept in one hash per window (per bucket: count, summed amount, failed
attempts); the distinct payers of an IP are a sorted set by last time seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from router.store import keys
from router.store.batch import Batch

BUCKETS = 12

SCREEN = (
    """
-- KEYS: token buckets (nb), then one hash per velocity window, then one sorted set per
--       distinct set. All share the merchant's tag (or all are the global bucket).
-- ARGV: now_ms, nb, then per bucket: interval_ms, burst; then nw, per window: its current
--       bucket number, ttl_ms, count to add, amount to add (negative: taken back); then
--       nd, per distinct set: member ('' = none), ttl_ms, window count, window lengths (ms)...
-- A window's hash has fields `<bucket>c`, `<bucket>s`, `<bucket>f` (count, sum, failed) for
-- its last BUCKETS buckets; older ones are removed when the hash grows past twice that.
-- Returns {allowed, limit, remaining, reset_ms, retry_ms, per window: c, s, f,
--          per distinct set: one count per window}. Nothing is counted when a bucket is empty.
local n = """
    + str(BUCKETS)
    + """
local now = tonumber(ARGV[1])
local nb = tonumber(ARGV[2])
local allowed, limit, remaining, reset, retry = 1, 0, -1, 0, 0
local tats = {}
for i = 1, nb do
  local interval, burst = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new = tat + interval
  local left, wait
  if new - now <= interval * burst then
    left = math.floor((now + interval * burst - new) / interval)
    wait = new - now
    tats[i] = new
  else
    allowed = 0
    left = 0
    wait = tat - now
    retry = math.max(retry, new - now - interval * burst)
  end
  if remaining < 0 or left < remaining then
    limit, remaining = burst, left
  end
  reset = math.max(reset, wait)
end
local out = {allowed, limit, math.max(remaining, 0), math.ceil(reset), math.ceil(retry)}
if allowed == 0 then
  return out
end
for i = 1, nb do
  redis.call('SET', KEYS[i], string.format('%.3f', tats[i]), 'PX',
             math.ceil(tats[i] - now) + 1000)
end
local a, k = 3 + 2 * nb, nb
local nw = tonumber(ARGV[a])
a = a + 1
for _ = 1, nw do
  k = k + 1
  local current, ttl = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local count, amount = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  if count ~= 0 or amount ~= 0 then
    redis.call('HINCRBY', KEYS[k], current .. 'c', count)
    redis.call('HINCRBY', KEYS[k], current .. 's', amount)
    redis.call('PEXPIRE', KEYS[k], ttl)
    if redis.call('HLEN', KEYS[k]) > 6 * n then
      local stale = {}
      for _, field in ipairs(redis.call('HKEYS', KEYS[k])) do
        if tonumber(string.sub(field, 1, -2)) <= current - n then
          stale[#stale + 1] = field
        end
      end
      if #stale > 0 then redis.call('HDEL', KEYS[k], unpack(stale)) end
    end
  end
  local fields = {}
  for j = 0, n - 1 do
    local b = current - j
    fields[#fields + 1] = b .. 'c'
    fields[#fields + 1] = b .. 's'
    fields[#fields + 1] = b .. 'f'
  end
  local got = redis.call('HMGET', KEYS[k], unpack(fields))
  local c, s, f = 0, 0, 0
  for j = 1, #got, 3 do
    c = c + tonumber(got[j] or 0)
    s = s + tonumber(got[j + 1] or 0)
    f = f + tonumber(got[j + 2] or 0)
  end
  out[#out + 1], out[#out + 2], out[#out + 3] = c, s, f
end
local nd = tonumber(ARGV[a])
a = a + 1
for _ = 1, nd do
  local member, ttl, windows = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  k = k + 1
  if member ~= '' then
    redis.call('ZADD', KEYS[k], now, member)
    redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now - ttl)
    redis.call('PEXPIRE', KEYS[k], ttl)
  end
  for j = 1, windows do
    out[#out + 1] = redis.call('ZCOUNT', KEYS[k], now - tonumber(ARGV[a + j - 1]) + 1, '+inf')
  end
  a = a + windows
end
return out
"""
)

FAILED = """
-- KEYS: a payer's velocity windows. ARGV: per key its current bucket number and ttl_ms.
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], ARGV[2 * i - 1] .. 'f', 1)
  redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
end
return #KEYS
"""

SCRIPTS = (SCREEN, FAILED)


@dataclass(frozen=True)
class Bucket:
    """A token bucket to draw from: the merchant's (`key_id` None) or an API key's."""

    kind: str
    interval_ms: float
    burst: int
    key_id: str | None = None


@dataclass(frozen=True)
class Window:
    """A velocity window of one subject (`payer`, `ip`, `merchant`) and value."""

    subject: str
    value: str
    name: str
    length_ms: int

    @property
    def bucket_ms(self) -> int:
        return max(1, self.length_ms // BUCKETS)


@dataclass(frozen=True)
class Taken:
    """What the tightest bucket says: the RateLimit-* fields, and for a refusal the wait."""

    allowed: bool
    limit: int
    remaining: int
    reset_ms: int
    retry_ms: int


@dataclass(frozen=True)
class Screened:
    taken: Taken | None
    """None when no bucket applied (no limits configured)."""
    windows: list[tuple[int, int, int]]
    """Per window asked: count, summed amount, failed attempts (this attempt included)."""
    payers: list[int]
    """Distinct payers of the IP, per window asked."""


def _taken(reply: Sequence[int]) -> Taken:
    allowed, limit, remaining, reset, retry = (int(v) for v in reply[:5])
    return Taken(allowed == 1, limit, remaining, reset, retry)


def _tighter(a: Taken | None, b: Taken) -> Taken:
    if a is None:
        return b
    allowed = a.allowed and b.allowed
    pick = a if a.remaining <= b.remaining else b
    return Taken(
        allowed,
        pick.limit,
        pick.remaining,
        max(a.reset_ms, b.reset_ms),
        max(a.retry_ms if not a.allowed else 0, b.retry_ms if not b.allowed else 0),
    )


class ScreenCall:
    """One screen script call (and the global ceiling's, when set), built once so that it
    can be queued in another request's round trip (`RiskStore.queue`)."""

    def __init__(
        self,
        mch: str,
        now_ms: int,
        buckets: Sequence[Bucket],
        windows: Sequence[Window] = (),
        count: tuple[int, int] = (1, 0),
        distinct: tuple[str, str, Sequence[int]] | None = None,
        global_bucket: Bucket | None = None,
        counted: frozenset[str] = frozenset(),
    ) -> None:
        """`counted`: subjects (`payer`, `ip`, `merchant`) whose windows are read without
        adding this attempt (it was counted there already)."""
        self.mch, self.now_ms, self.count = mch, now_ms, count
        self.buckets, self.windows, self.global_bucket = buckets, windows, global_bucket
        key_list: list[str] = [keys.rate_bucket(mch, b.kind, b.key_id) for b in buckets]
        args: list[str | int | float] = [now_ms, len(buckets)]
        for b in buckets:
            args += [b.interval_ms, b.burst]
        args.append(len(windows))
        for w in windows:
            key_list.append(keys.velocity_window(mch, w.subject, w.value, w.name))
            adds = (0, 0) if w.subject in counted else count
            args += [now_ms // w.bucket_ms, w.bucket_ms * (BUCKETS + 1), adds[0], adds[1]]
        if distinct is None:
            args.append(0)
        else:
            ip, payer, lengths = distinct
            key_list.append(keys.ip_payers(mch, ip))
            member = keys.payer_member(payer) if payer else ""
            args += [1, member, max(lengths), len(lengths), *lengths]
        self.keys, self.args = key_list, args

    def decode_from(self, results: Sequence[Any], indexes: Sequence[int]) -> Screened:
        """The `Screened` of a batch's results, at the indexes `RiskStore.queue` gave."""
        return self.decode([[int(v) for v in results[i]] for i in indexes])

    def decode(self, replies: Sequence[Sequence[int]]) -> Screened:
        reply = replies[0]
        taken = _taken(reply) if self.buckets else None
        if len(replies) > 1:
            glob = _taken(replies[1])
            taken = glob if taken is None else _tighter(taken, glob)
        if len(reply) == 5:  # refused: nothing was counted or read
            return Screened(taken, [], [])
        rest = reply[5:]
        n = len(self.windows)
        found = [(rest[3 * i], rest[3 * i + 1], rest[3 * i + 2]) for i in range(n)]
        return Screened(taken, found, list(rest[3 * n :]))


class RiskStore:
    """Token buckets, velocity windows and risk lists shared by every router process."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._screen = redis.register_script(SCREEN)
        self._failed = redis.register_script(FAILED)

    async def screen(
        self,
        mch: str,
        now_ms: int,
        buckets: Sequence[Bucket],
        windows: Sequence[Window] = (),
        count: tuple[int, int] = (1, 0),
        distinct: tuple[str, str, Sequence[int]] | None = None,
        global_bucket: Bucket | None = None,
    ) -> Screened:
        """Take a token from each bucket; if all had one, add `count` (attempts, amount) to
        `windows` and read them, and add the payer to the IP's set (`distinct`: ip, payer,
        window lengths in ms) and read its counts. One round trip."""
        return await self.run(
            ScreenCall(mch, now_ms, buckets, windows, count, distinct, global_bucket)
        )

    async def run(self, call: ScreenCall) -> Screened:
        """Send one screen call on its own (one round trip)."""
        if call.global_bucket is None:
            return call.decode([await self._run(call.keys, call.args)])
        batch = Batch(self._redis)
        indexes = self.queue(batch, call)
        return call.decode_from(await batch.execute(), indexes)

    def queue(self, batch: Batch, call: ScreenCall) -> list[int]:
        """Queue `call` in `batch` (to share its round trip); returns the indexes of its
        replies, for `ScreenCall.decode_from`."""
        indexes = [batch.script(self._screen, call.keys, call.args)]
        g = call.global_bucket
        if g is not None:
            indexes.append(
                batch.script(
                    self._screen,
                    [keys.global_rate_bucket(g.kind)],
                    [call.now_ms, 1, g.interval_ms, g.burst, 0, 0],
                )
            )
        return indexes

    async def uncount(self, call: ScreenCall) -> None:
        """Take back what `call` added to its velocity windows (it ran beside a request that
        then did nothing: an idempotent replay). Tokens stay taken, as for any request."""
        if not call.windows:
            return
        back = ScreenCall(call.mch, call.now_ms, (), call.windows, (-call.count[0], -call.count[1]))
        await self._run(back.keys, back.args)

    async def _run(self, key_list: list[str], args: list[str | int | float]) -> list[int]:
        """One call of the screen script, without a pipeline (the usual case: a pipeline
        costs the router more than the command)."""
        try:
            reply = await cast(
                Awaitable[list[Any]],
                self._redis.evalsha(self._screen.sha, len(key_list), *key_list, *args),
            )
        except NoScriptError:
            reply = await self._screen(keys=cast(Any, key_list), args=cast(Any, args))
        return [int(v) for v in reply]

    async def count_failure(self, mch: str, now_ms: int, windows: Sequence[Window]) -> None:
        """Count a failed attempt (a refusal by the channel or a rule) in a payer's windows."""
        if not windows:
            return
        key_list = [keys.velocity_window(mch, w.subject, w.value, w.name) for w in windows]
        args: list[int] = []
        for w in windows:
            args += [now_ms // w.bucket_ms, w.bucket_ms * (BUCKETS + 1)]
        await self._failed(keys=key_list, args=args)

    async def lists(self) -> dict[str, set[str]]:
        """Every risk list and its entries."""
        names = sorted(str(name) for name in await self._redis.smembers(keys.risk_lists()))
        if not names:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.smembers(keys.risk_list(name))
        found = await pipe.execute()
        return {name: {str(e) for e in entries} for name, entries in zip(names, found, strict=True)}

    async def entries(self, name: str) -> set[str]:
        return {str(e) for e in await self._redis.smembers(keys.risk_list(name))}

    async def replace(self, name: str, entries: Sequence[str]) -> None:
        """Make `name` hold exactly `entries` (an empty list is removed)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(keys.risk_list(name))
        if entries:
            pipe.sadd(keys.risk_list(name), *entries)
            pipe.sadd(keys.risk_lists(), name)
        else:
            pipe.srem(keys.risk_lists(), name)
        await pipe.execute()

    async def add(self, name: str, entries: Sequence[str]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(keys.risk_list(name), *entries)
        pipe.sadd(keys.risk_lists(), name)
        await pipe.execute()

    async def remove(self, name: str, entries: Sequence[str]) -> None:
        await self._redis.srem(keys.risk_list(name), *entries)
