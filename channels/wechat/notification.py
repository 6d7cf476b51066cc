"""WeChat Pay notifications: the encrypted envelope. Pure functions, no I/O.

The simulator seals a transaction into a notification body with `build_notification`; the
adapter, after checking the signature headers (`channels.wechat.crypto.verify_answer`), opens
it with `decode_notification`. The resource is AES-256-GCM with the APIv3 key; its associated
data is the resource's `original_type`: "transaction" for `TRANSACTION.SUCCESS`, "refund" for
`REFUND.SUCCESS`, `REFUND.ABNORMAL` and `REFUND.CLOSED`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from channels.base import Notification
from channels.wechat.crypto import VerificationError, aes_gcm_decrypt, aes_gcm_encrypt
from channels.wechat.protocol.answers import parse_refund, parse_transaction
from channels.wechat.protocol.wire import decode_object, dump_json, format_time

ORIGINAL_TYPES = {"TRANSACTION": "transaction", "REFUND": "refund"}
"""The resource an event family carries: `TRANSACTION.*` payments, `REFUND.*` refunds."""


def build_notification(
    *,
    notification_id: str,
    create_time: datetime,
    resource: Mapping[str, Any],
    apiv3_key: str,
    nonce: str,
    event_type: str = "TRANSACTION.SUCCESS",
    summary: str = "支付成功",
    original_type: str = "transaction",
) -> bytes:
    """A notification body with `resource` encrypted (the simulator's side)."""
    associated_data = original_type
    ciphertext = aes_gcm_encrypt(apiv3_key, nonce, associated_data, dump_json(resource))
    return dump_json(
        {
            "id": notification_id,
            "create_time": format_time(create_time),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": associated_data,
                "nonce": nonce,
            },
        }
    )


def decode_notification(body: bytes, apiv3_key: str, *, mchid: str | None = None) -> Notification:
    """Decrypt and read a notification whose signature was already verified.

    With `mchid`, a resource about another merchant is refused (reason `account`). Raises
    `VerificationError` with reason `malformed`, `decrypt` or `account`.
    """
    try:
        envelope = decode_object(body)
        resource = envelope.get("resource")
        if not isinstance(resource, Mapping):
            raise ValueError("no resource")
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise ValueError("resource algorithm is not AEAD_AES_256_GCM")
        parts = [resource.get(name) for name in ("ciphertext", "nonce", "associated_data")]
        ciphertext, nonce, associated = parts
        if not (isinstance(ciphertext, str) and isinstance(nonce, str)):
            raise ValueError("resource lacks ciphertext or nonce")
        event_type = envelope.get("event_type")
        notification_id = envelope.get("id")
        if not isinstance(event_type, str) or not isinstance(notification_id, str):
            raise ValueError("notification lacks id or event_type")
    except ValueError as exc:
        raise VerificationError("malformed", f"malformed notification: {exc}") from exc
    family = event_type.partition(".")[0]
    original_type = ORIGINAL_TYPES.get(family)
    if original_type is None or resource.get("original_type") not in (original_type, None):
        raise VerificationError("malformed", f"not a payment or refund notification: {event_type}")
    plaintext = aes_gcm_decrypt(
        apiv3_key, nonce, associated if isinstance(associated, str) else "", ciphertext
    )
    try:
        data = decode_object(plaintext)
        if mchid is not None and data.get("mchid") != mchid:
            raise VerificationError("account", "the notification is for another merchant")
        if original_type == "refund":
            refund = parse_refund(data)
            return Notification(
                notification_id=notification_id, event_type=event_type, refund=refund
            )
        trade = parse_transaction(data)
    except ValueError as exc:
        raise VerificationError("malformed", f"malformed {original_type}: {exc}") from exc
    return Notification(notification_id=notification_id, event_type=event_type, trade=trade)
