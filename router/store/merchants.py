"""Merchants and their API keys.

A merchant's key is one secret (`sk_test_...` / `sk_live_...`) with a public id (`key_...`).
It authenticates either as a bearer token or as the HMAC key of a signed request.

- Bearer: only SHA-256 of the secret is needed, and only that is used to find the key.
- Signed requests: the server must recompute an HMAC with the secret itself, so a hash cannot
  serve. The secret is kept encrypted (AES-256-GCM) under `PAYROUTER_SECRET_KEY`; it is
  decrypted in memory only to check a signature and never logged or returned again.

Rotation issues a new key and gives the old ones an expiry (the grace period), so a merchant's
deploy can switch keys without a failed request.

Names and default webhook endpoints are checked here too (`merchant_problem`), wherever they
come from; the command line adds the live-mode DNS check, which needs the network.

Every request reads its key and merchant: a router keeps what it found for `cache_s` seconds
(5 s in `payrouter serve`), so a change made by another process (a rotation's expiry, a
merchant switched to signed requests only) takes effect within that time. Expiry times are
checked on every use; only keys that exist are kept, so a new key works at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, replace
from enum import Enum
from typing import Final, Literal

import redis.asyncio as aioredis

from router.clock import Clock, rfc3339
from router.ids import MERCHANT_ID, new_id
from router.store import keys
from router.store.cache import TTLCache
from router.store.changes import record_key, record_merchant
from router.store.codec import mapping, maybe_text, text
from router.store.sealing import SecretBox
from router.urls import live_url_problem, url_problem

Mode = Literal["test", "live"]
MAX_NAME = 200
MAX_GRACE_S = 30 * 86400
"""The longest grace period a rotation may give old secrets (30 days)."""


class _Keep(Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""For `MerchantStore.update`: leave this field as it is."""


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a merchant's name (None: it can)."""
    if not name.strip():
        return "must not be empty"
    if len(name) > MAX_NAME:
        return f"must be at most {MAX_NAME} characters"
    if not name.isprintable():
        return "must not contain control characters or line breaks"
    return None


def merchant_problem(name: str | None, notify_url: str | None, live: bool) -> str | None:
    """Why a merchant's name or default endpoint is refused, naming the field (None: fine).

    `live`: the merchant has (or is getting) a live key, so its default endpoint receives live
    events and must pass the static live-mode checks.
    """
    if name is not None and (problem := name_problem(name)) is not None:
        return f"name {problem}"
    if notify_url is not None:
        problem = live_url_problem(notify_url) if live else url_problem(notify_url)
        if problem is not None:
            return f"notify_url {problem}"
    return None


def grace_problem(grace_s: int) -> str | None:
    if not 0 <= grace_s <= MAX_GRACE_S:
        return f"grace must be between 0 and {MAX_GRACE_S} seconds (30 days), not {grace_s}"
    return None


@dataclass(frozen=True)
class Merchant:
    id: str
    name: str
    require_signed: bool
    notify_url: str | None
    created_at: str


@dataclass(frozen=True)
class ApiKey:
    id: str
    merchant_id: str
    mode: Mode
    created_at: str
    expires_at_ms: int | None
    """Set once the key was rotated away: it keeps working until then."""

    def active(self, now_ms: int) -> bool:
        return self.expires_at_ms is None or now_ms < self.expires_at_ms


@dataclass(frozen=True)
class IssuedKey:
    """A new key with its secret: shown once to whoever created it, never again."""

    key: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class MerchantStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        clock: Clock,
        box: SecretBox,
        *,
        allow_live: bool,
        cache_s: float = 0.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._box = box
        self.allow_live = allow_live
        self._keys: TTLCache[str, ApiKey] = TTLCache(cache_s, clock)
        self._merchants: TTLCache[str, Merchant] = TTLCache(cache_s, clock)
        self._key_ids: TTLCache[str, str] = TTLCache(cache_s, clock)
        """sha256(secret) → key id, for bearer lookups."""
        self._signing: TTLCache[str, str] = TTLCache(cache_s, clock)
        """key id → secret, for signed requests."""

    async def create(
        self,
        name: str,
        *,
        mode: Mode = "test",
        require_signed: bool = False,
        notify_url: str | None = None,
    ) -> tuple[Merchant, IssuedKey]:
        """A new merchant with one key of `mode` and a webhook secret.

        Raises `ValueError` naming the field for a bad name or default endpoint.
        """
        self._check_mode(mode)
        merchant = await self.add(
            name, require_signed=require_signed, notify_url=notify_url, live=mode == "live"
        )
        await self.rotate_webhook_secret(merchant.id)
        return merchant, await self.issue_key(merchant.id, mode)

    async def add(
        self,
        name: str,
        *,
        require_signed: bool = False,
        notify_url: str | None = None,
        live: bool = False,
        merchant_id: str | None = None,
    ) -> Merchant:
        """The merchant's profile alone, without keys; `merchant_id` to recreate a known one
        (`payrouter dev`'s sandbox merchant). Raises `ValueError` naming the field."""
        problem = merchant_problem(name, notify_url, live)
        if merchant_id is not None and not MERCHANT_ID.fullmatch(merchant_id):
            problem = problem or f"merchant id {merchant_id!r} is not a merchant id"
        if problem is not None:
            raise ValueError(problem)
        merchant = Merchant(
            id=merchant_id or new_id("mch"),
            name=name.strip(),
            require_signed=require_signed,
            notify_url=notify_url,
            created_at=rfc3339(self._clock.utcnow()),
        )
        await self._redis.hset(
            keys.merchant(merchant.id),
            mapping={
                "id": merchant.id,
                "name": merchant.name,
                "require_signed": "1" if require_signed else "0",
                "notify_url": notify_url or "",
                "created_at": merchant.created_at,
            },
        )
        await self._redis.sadd(keys.merchants(), merchant.id)
        await record_merchant(self._redis, merchant, self._clock.now_ms())
        return merchant

    async def update(
        self,
        mch: str,
        *,
        notify_url: str | _Keep | None = KEEP,
        require_signed: bool | _Keep = KEEP,
    ) -> Merchant | None:
        """Change a merchant's default endpoint (None clears it) or its signed-only setting.

        None when there is no such merchant. Raises `ValueError` naming the field; a merchant
        with a live key needs a default endpoint that passes the live-mode checks.
        """
        self._merchants.drop(mch)
        current = await self.get(mch)
        if current is None:
            return None
        changes: list[str] = []
        if not isinstance(notify_url, _Keep):
            problem = merchant_problem(None, notify_url, await self.has_live_key(mch))
            if problem is not None:
                raise ValueError(problem)
            current = replace(current, notify_url=notify_url)
            changes += ["notify_url", notify_url or ""]
        if not isinstance(require_signed, _Keep):
            current = replace(current, require_signed=require_signed)
            changes += ["require_signed", "1" if require_signed else "0"]
        if changes:
            await self._redis.hset(keys.merchant(mch), items=changes)
            await record_merchant(self._redis, current, self._clock.now_ms())
        self._merchants.drop(mch)
        return current

    async def has_live_key(self, mch: str) -> bool:
        """Whether any of the merchant's keys that still work is a live key."""
        now = self._clock.now_ms()
        return any(k.mode == "live" and k.active(now) for k in await self.keys_of(mch))

    async def webhook_secrets(self, mch: str) -> list[str]:
        """The merchant's webhook signing secrets still in force, newest first."""
        sealed = maybe_text(await self._redis.hget(keys.merchant(mch), "webhook_secrets"))
        if sealed is None:
            return []
        now = self._clock.now_ms()
        entries = json.loads(self._box.open(sealed, f"{mch}:webhook"))
        return [
            e["secret"] for e in entries if e["expires_at_ms"] is None or e["expires_at_ms"] > now
        ]

    async def rotate_webhook_secret(
        self, mch: str, grace_s: int = 0, *, secret: str | None = None
    ) -> str:
        """A new `whsec_` secret (or `secret`, to restore a known one); the old ones keep
        signing (beside it) for `grace_s`. Raises `ValueError` for a bad grace or secret."""
        if (problem := grace_problem(grace_s)) is not None:
            raise ValueError(problem)
        if secret is not None and not secret.startswith("whsec_"):
            raise ValueError("a webhook secret starts with whsec_")
        now = self._clock.now_ms()
        sealed = maybe_text(await self._redis.hget(keys.merchant(mch), "webhook_secrets"))
        entries = json.loads(self._box.open(sealed, f"{mch}:webhook")) if sealed else []
        for entry in entries:
            if entry["expires_at_ms"] is None or entry["expires_at_ms"] > now + grace_s * 1000:
                entry["expires_at_ms"] = now + grace_s * 1000
        secret = secret or "whsec_" + base64.b64encode(os.urandom(24)).decode()
        kept = [e for e in entries if e["expires_at_ms"] > now and e["secret"] != secret]
        entries = [{"secret": secret, "expires_at_ms": None}, *kept]
        await self._redis.hset(
            keys.merchant(mch),
            "webhook_secrets",
            self._box.seal(json.dumps(entries), f"{mch}:webhook"),
        )
        return secret

    async def ids(self) -> list[str]:
        return sorted(text(m) for m in await self._redis.smembers(keys.merchants()))

    async def get(self, mch: str) -> Merchant | None:
        cached = self._merchants.get(mch)
        if cached is not None:
            return cached
        raw = mapping(await self._redis.hgetall(keys.merchant(mch)))
        if not raw:
            return None
        return self._merchants.put(
            mch,
            Merchant(
                id=raw["id"],
                name=raw["name"],
                require_signed=raw.get("require_signed") == "1",
                notify_url=raw.get("notify_url") or None,
                created_at=raw["created_at"],
            ),
        )

    async def all(self) -> list[Merchant]:
        found = [await self.get(mch) for mch in await self.ids()]
        return [m for m in found if m is not None]

    async def issue_key(self, mch: str, mode: Mode, *, secret: str | None = None) -> IssuedKey:
        """A new key of `mode` (with `secret`: restore a known one that this store lacks)."""
        self._check_mode(mode)
        if secret is not None and (
            not secret.startswith(f"sk_{mode}_") or await self.key_for_secret(secret) is not None
        ):
            raise ValueError(f"not a new {mode} secret")
        secret = secret or f"sk_{mode}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=new_id("key", 16),
            merchant_id=mch,
            mode=mode,
            created_at=rfc3339(self._clock.utcnow()),
            expires_at_ms=None,
        )
        # Three keys in three slots, written in an order that makes a crash between them
        # harmless: listed first (a listed id with no record is skipped), usable last (a
        # secret nobody was ever told cannot be looked up before its record is complete).
        await self._redis.sadd(keys.merchant_keys(mch), key.id)
        await self._redis.hset(
            keys.api_key(key.id),
            mapping={
                "id": key.id,
                "merchant_id": mch,
                "mode": mode,
                "created_at": key.created_at,
                "secret_hash": hash_secret(secret),
                "secret_sealed": self._box.seal(secret, key.id),
            },
        )
        await self._redis.set(keys.api_key_hash(hash_secret(secret)), key.id)
        await record_key(self._redis, key)
        return IssuedKey(key, secret)

    async def keys_of(self, mch: str) -> list[ApiKey]:
        ids = sorted(text(k) for k in await self._redis.smembers(keys.merchant_keys(mch)))
        found = [await self.key(key_id) for key_id in ids]
        return [k for k in found if k is not None]

    async def rotate(self, mch: str, mode: Mode, grace_s: int) -> IssuedKey:
        """A new key for `mode`; the merchant's other keys of that mode expire after grace.

        Raises `ValueError` for a grace out of range, or a first live key while the merchant's
        default endpoint would be refused in live mode.
        """
        if (problem := grace_problem(grace_s)) is not None:
            raise ValueError(problem)
        self._check_mode(mode)
        if mode == "live":
            merchant = await self.get(mch)
            url = merchant.notify_url if merchant else None
            if url is not None and (problem := live_url_problem(url)) is not None:
                raise ValueError(f"notify_url {problem} (the default endpoint gets live events)")
        expires = self._clock.now_ms() + grace_s * 1000
        for old in await self.keys_of(mch):
            if old.mode == mode and (old.expires_at_ms is None or old.expires_at_ms > expires):
                await self._redis.hset(keys.api_key(old.id), "expires_at_ms", str(expires))
                await record_key(self._redis, replace(old, expires_at_ms=expires))
        self._keys.clear()
        return await self.issue_key(mch, mode)

    async def key(self, key_id: str) -> ApiKey | None:
        cached = self._keys.get(key_id)
        if cached is not None:
            return cached
        raw = mapping(await self._redis.hgetall(keys.api_key(key_id)))
        if not raw:
            return None
        expires = raw.get("expires_at_ms")
        found = ApiKey(
            id=raw["id"],
            merchant_id=raw["merchant_id"],
            mode="live" if raw["mode"] == "live" else "test",
            created_at=raw["created_at"],
            expires_at_ms=int(expires) if expires else None,
        )
        return self._keys.put(key_id, found)

    def works(self, key: ApiKey, mch: str, mode: Mode) -> bool:
        """Whether `key` is `mch`'s, of `mode`, and not expired now."""
        return key.merchant_id == mch and key.mode == mode and key.active(self._clock.now_ms())

    async def key_for_secret(self, secret: str) -> ApiKey | None:
        """The key whose secret this is, compared in constant time."""
        digest = hash_secret(secret)
        cached = self._key_ids.get(digest)
        if cached is not None:
            return await self.key(cached)
        key_id = maybe_text(await self._redis.get(keys.api_key_hash(digest)))
        if key_id is None:
            return None
        stored = maybe_text(await self._redis.hget(keys.api_key(key_id), "secret_hash"))
        if stored is None or not hmac.compare_digest(stored, digest):
            return None
        self._key_ids.put(digest, key_id)
        return await self.key(key_id)

    async def signing_secret(self, key_id: str) -> str | None:
        cached = self._signing.get(key_id)
        if cached is not None:
            return cached
        sealed = maybe_text(await self._redis.hget(keys.api_key(key_id), "secret_sealed"))
        return None if sealed is None else self._signing.put(key_id, self._box.open(sealed, key_id))

    async def use_nonce(self, mch: str, nonce: str, ttl_s: int) -> bool:
        """True the first time a nonce is seen inside its window, False on any reuse."""
        return bool(await self._redis.set(keys.nonce(mch, nonce), "1", nx=True, ex=ttl_s))

    def _check_mode(self, mode: Mode) -> None:
        if mode == "live" and not self.allow_live:
            raise ValueError("the embedded store is for the sandbox: it issues test keys only")
