"""Verifying payrouter's webhooks, per the Standard Webhooks specification.

Each delivery carries `webhook-id` (the event id: dedupe on it), `webhook-timestamp` (unix
seconds) and `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` entries, one per
secret in force, over `"{webhook-id}.{webhook-timestamp}.{raw body}"`, keyed with the base64
part of a `whsec_...` secret. Verify the raw bytes as received, before parsing them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping

from pydantic import ValidationError

from payrouter_sdk._errors import WebhookVerificationError
from payrouter_sdk._models import Event

DEFAULT_TOLERANCE = 300
"""Seconds a webhook's timestamp may be from the receiver's clock, either way."""
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_TIMESTAMP_DIGITS = 12
"""Unix seconds until the year 33658: any longer stamp is refused before it is read."""


def _key(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _signature(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    # Frameworks hand undecodable header bytes over as surrogates: sign the bytes received.
    head = f"{msg_id}.{timestamp}.".encode("utf-8", "surrogateescape")
    return hmac.new(key, head + body, hashlib.sha256).digest()


class Webhook:
    """Verifies (and, for tests, signs) webhooks with one secret, or several while the
    endpoint's secret rotates: a delivery passes if any of its signatures matches any secret.

        webhook = Webhook(os.environ["PAYROUTER_WEBHOOK_SECRET"])
        event = webhook.verify(raw_body, request.headers)  # raises WebhookVerificationError

    `tolerance` is in seconds; `clock` returns the current unix time (for tests).
    """

    def __init__(
        self,
        secret: str | Iterable[str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets:
            raise ValueError("at least one webhook secret is required")
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ValueError(f"tolerance must be 0 or more seconds, not {tolerance!r}")
        self._keys = [_key(s) for s in secrets]
        self.tolerance = tolerance
        self._clock = clock

    def __repr__(self) -> str:
        return f"<Webhook with {len(self._keys)} secret(s)>"

    def verify(self, body: bytes | str, headers: Mapping[str, str]) -> Event:
        """The event in `body` if the headers prove payrouter sent it, recently; otherwise
        `WebhookVerificationError` saying why. `headers` may be any mapping (any case)."""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        found = {name.lower(): value for name, value in headers.items()}
        msg_id = found.get("webhook-id", "")
        stamp = found.get("webhook-timestamp", "")
        signatures = found.get("webhook-signature", "")
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", stamp),
            ("webhook-signature", signatures),
        ):
            if not value:
                raise WebhookVerificationError(f"missing {name} header")
        self._check_timestamp(stamp)
        given = self._v1_signatures(signatures)
        try:
            expected = [_signature(key, msg_id, stamp, raw) for key in self._keys]
        except UnicodeEncodeError:
            raise WebhookVerificationError("webhook-id is not text") from None
        # Compare every pair, so the time taken does not depend on which one matched.
        matched = False
        for sig in given:
            for want in expected:
                matched |= hmac.compare_digest(sig, want)
        if not matched:
            raise WebhookVerificationError("no signature matches this secret")
        try:
            return Event.model_validate(json.loads(raw))
        except (ValueError, RecursionError, ValidationError) as exc:
            raise WebhookVerificationError(f"signed, but the body is not an event: {exc}") from exc

    def sign(self, msg_id: str, timestamp: int, body: bytes | str) -> str:
        """A `webhook-signature` value: one `v1,...` entry per secret, space-separated."""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        return " ".join(
            "v1," + base64.b64encode(_signature(key, msg_id, timestamp, raw)).decode()
            for key in self._keys
        )

    def _check_timestamp(self, stamp: str) -> None:
        # ASCII digits only, and few enough for int() (thousands of them raise).
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > MAX_TIMESTAMP_DIGITS:
            raise WebhookVerificationError("webhook-timestamp is not unix seconds")
        timestamp = int(stamp)
        now = self._clock()
        if timestamp < now - self.tolerance:
            raise WebhookVerificationError(
                f"webhook-timestamp is too old ({int(now - timestamp)} s; "
                f"tolerance {self.tolerance:g} s): a replay, or a clock out of sync"
            )
        if timestamp > now + self.tolerance:
            raise WebhookVerificationError(
                f"webhook-timestamp is {int(timestamp - now)} s in the future "
                f"(tolerance {self.tolerance:g} s): check the clocks"
            )

    @staticmethod
    def _v1_signatures(header: str) -> list[bytes]:
        found = []
        for entry in header.split():
            version, _, value = entry.partition(",")
            if version != "v1":
                continue
            try:
                found.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
        if not found:
            raise WebhookVerificationError("webhook-signature has no v1 signature")
        return found
