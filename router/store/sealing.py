"""Sealing the few secrets that cannot be stored as hashes (signing secrets, webhook secrets).

AES-256-GCM under `PAYROUTER_SECRET_KEY`, or, when it is unset, a key generated into the store
itself (embedded and development use). A known text sealed at first use lets every later start
check that its key opens what the store holds, instead of failing one request at a time.
"""

from __future__ import annotations

import base64
import os

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from router.settings import ConfigurationError
from router.store import keys
from router.store.codec import text

_KEY_CHECK = "payrouter secret key check"


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
        configured = key is not None
        if key is None:
            fresh = base64.b64encode(os.urandom(32)).decode()
            await redis.set(keys.fallback_secret_key(), fresh, nx=True)
            key = base64.b64decode(text(await redis.get(keys.fallback_secret_key())))
        box = cls(key)
        await box._check(redis, configured)
        return box

    async def _check(self, redis: aioredis.Redis, configured: bool) -> None:
        """Refuse to start with a key that cannot open what the store already holds: every
        signed request and webhook would fail later, one by one."""
        await redis.set(keys.secret_key_check(), self.seal(_KEY_CHECK, "key-check"), nx=True)
        try:
            opened = self.open(text(await redis.get(keys.secret_key_check())), "key-check")
        except (InvalidTag, ValueError):
            opened = None
        if opened == _KEY_CHECK:
            return
        if configured:
            raise ConfigurationError(
                "PAYROUTER_SECRET_KEY is not the key this store's secrets were sealed with "
                "(or they were sealed while it was unset): start with that key"
            )
        raise ConfigurationError(
            "PAYROUTER_SECRET_KEY is not set, but this store's secrets were sealed under one: "
            "set it to the key used before"
        )

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
