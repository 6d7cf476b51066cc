"""Merchants and their API keys.

A merchant's key is one secret (`sk_test_...` / `sk_live_...`) with a public id (`key_...`).
It authenticates either as a bearer token or as the HMAC key of a signed request.

- Bearer: only SHA-256 of the secret is needed, and only that is used to find the key.
- Signed requests: the server must recompute an HMAC with the secret itself, so a hash cannot
  serve. The secret is kept encrypted (AES-256-GCM) under `PAYROUTER_SECRET_KEY`; it is
  decrypted in memory only to check a signature and never logged or returned again.

Rotation issues a new key and gives the old ones an expiry (the grace period), so a merchant's
deploy can switch keys without a failed request.

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
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from router.clock import Clock, rfc3339
from router.ids import new_id
from router.store import keys
from router.store.cache import TTLCache
from router.store.codec import mapping, maybe_text, text

Mode = Literal["test", "live"]


class SecretBox:
    """AES-256-GCM for the few secrets that cannot be stored as hashes."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    async def load(cls, redis: aioredis.Redis, key: bytes | None) -> SecretBox:
        """Use `key`, or the store's own generated key (embedded and development use).

        Without `PAYROUTER_SECRET_KEY` the key sits in the same store as what it protects,
        which protects nothing against a stolen dump; the service says so at start-up.
        """
        if key is None:
            fresh = base64.b64encode(os.urandom(32)).decode()
            await redis.set(keys.fallback_secret_key(), fresh, nx=True)
            key = base64.b64decode(text(await redis.get(keys.fallback_secret_key())))
        return cls(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()


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
        self._keys: TTLCache[str, ApiKey] = TTLCache(cache_s)
        self._merchants: TTLCache[str, Merchant] = TTLCache(cache_s)
        self._key_ids: TTLCache[str, str] = TTLCache(cache_s)
        """sha256(secret) → key id, for bearer lookups."""
        self._signing: TTLCache[str, str] = TTLCache(cache_s)
        """key id → secret, for signed requests."""

    async def create(
        self,
        name: str,
        *,
        mode: Mode = "test",
        require_signed: bool = False,
        notify_url: str | None = None,
    ) -> tuple[Merchant, IssuedKey]:
        self._check_mode(mode)
        merchant = Merchant(
            id=new_id("mch"),
            name=name,
            require_signed=require_signed,
            notify_url=notify_url,
            created_at=rfc3339(self._clock.utcnow()),
        )
        await self._redis.hset(
            keys.merchant(merchant.id),
            mapping={
                "id": merchant.id,
                "name": name,
                "require_signed": "1" if require_signed else "0",
                "notify_url": notify_url or "",
                "created_at": merchant.created_at,
            },
        )
        await self._redis.sadd(keys.merchants(), merchant.id)
        await self.rotate_webhook_secret(merchant.id)
        return merchant, await self.issue_key(merchant.id, mode)

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

    async def rotate_webhook_secret(self, mch: str, grace_s: int = 0) -> str:
        """A new `whsec_` secret; the old ones keep signing (beside it) for `grace_s`."""
        now = self._clock.now_ms()
        sealed = maybe_text(await self._redis.hget(keys.merchant(mch), "webhook_secrets"))
        entries = json.loads(self._box.open(sealed, f"{mch}:webhook")) if sealed else []
        for entry in entries:
            if entry["expires_at_ms"] is None or entry["expires_at_ms"] > now + grace_s * 1000:
                entry["expires_at_ms"] = now + grace_s * 1000
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        kept = [e for e in entries if e["expires_at_ms"] > now]
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

    async def issue_key(self, mch: str, mode: Mode) -> IssuedKey:
        self._check_mode(mode)
        secret = f"sk_{mode}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=new_id("key", 16),
            merchant_id=mch,
            mode=mode,
            created_at=rfc3339(self._clock.utcnow()),
            expires_at_ms=None,
        )
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
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
        pipe.set(keys.api_key_hash(hash_secret(secret)), key.id)
        pipe.sadd(keys.merchant_keys(mch), key.id)
        await pipe.execute()
        return IssuedKey(key, secret)

    async def keys_of(self, mch: str) -> list[ApiKey]:
        ids = sorted(text(k) for k in await self._redis.smembers(keys.merchant_keys(mch)))
        found = [await self.key(key_id) for key_id in ids]
        return [k for k in found if k is not None]

    async def rotate(self, mch: str, mode: Mode, grace_s: int) -> IssuedKey:
        """A new key for `mode`; the merchant's other keys of that mode expire after grace."""
        expires = self._clock.now_ms() + grace_s * 1000
        for old in await self.keys_of(mch):
            if old.mode == mode and (old.expires_at_ms is None or old.expires_at_ms > expires):
                await self._redis.hset(keys.api_key(old.id), "expires_at_ms", str(expires))
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
