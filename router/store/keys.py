"""Every Redis key payrouter uses, in one place.

Keys that belong to one merchant share the hash tag `{mch_...}`, so the multi-key Lua scripts
that create a payment, move its status and record idempotent answers touch one Redis Cluster
slot. Keys that must be found without knowing the merchant (API keys, a payment's owner, the
re-query schedule) are single-key and are only ever used by single-key commands and scripts.

    pr:{mch}:merchant              hash    merchant profile
    pr:{mch}:pay:{pay_id}          hash    one payment (fields: see router.store.payments)
    pr:{mch}:payments              zset    payment ids by created_at (ms), for listing
    pr:{mch}:order:{moid}          string  the payment that holds a merchant_order_id
    pr:{mch}:orders:{moid}         set     every payment ever created with that id
    pr:{mch}:refund:{re_id}        hash    one refund
    pr:{mch}:pay:{pay_id}:refunds  zset    a payment's refund ids by created_at (ms)
    pr:{mch}:mrefund:{id}          string  the refund that holds a merchant_refund_id
    pr:{mch}:evt:{evt_id}          hash    a webhook event: type, data, delivery state
    pr:{mch}:evt:{evt_id}:attempts list    its delivery attempts (JSON), oldest first
    pr:{mch}:events                zset    event ids by created_at (ms), for listing
    pr:{mch}:outbox                stream  events to deliver (consumer group "dispatch")
    pr:{mch}:dead                  zset    events whose every attempt failed, by time (ms)
    pr:{mch}:disabled-endpoints    set     webhook URLs that answered 410
    pr:{mch}:disabled-endpoints:info  hash  URL → JSON {at_ms, event}: when and why disabled
    pr:{mch}:webhook-faults        hash    event id → deliveries that failed before recording
    pr:{mch}:idem:{sha256(key)}    hash    an idempotency record (24 h)
    pr:{mch}:nonce:{sha256(nonce)} string  a signed-request nonce (inside the window)
    pr:{mch}:keys                  set     the merchant's API key ids
    pr:merchants                   set     all merchant ids
    pr:key:{key_id}                hash    an API key: owner, mode, hash, encrypted secret
    pr:keyhash:{sha256(secret)}    string  key id, for bearer lookup
    pr:payref:{pay_id}             string  the merchant that owns a payment (callbacks)
    pr:payref:{re_id}              string  the merchant that owns a refund (callbacks)
    pr:{sched}:payments            zset    "mch_id/pay_id" or "mch_id/re_id" by next due (ms)
    pr:{webhooks}:retry            zset    "mch_id/evt_id" by the next delivery attempt (ms)
    pr:{sys}:secret-key            string  fallback encryption key (embedded/dev use only)
    pr:{sys}:secret-key-check      string  a known text sealed under the store's secret key
    pr:{cb:account}:state          hash    an account's breaker, override and health summary
    pr:{cb:account}:probes         zset    half-open probe calls in flight, by start (ms)
    pr:{cb:account}:w:{bucket}     hash    one bucket of the sliding window: ok, fail, lat
"""

from __future__ import annotations

import hashlib

PREFIX = "pr"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def merchant(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:merchant"


def payment(mch: str, pay_id: str) -> str:
    return f"{PREFIX}:{{{mch}}}:pay:{pay_id}"


def payments_by_created(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:payments"


def order_holder(mch: str, merchant_order_id: str) -> str:
    return f"{PREFIX}:{{{mch}}}:order:{merchant_order_id}"


def order_history(mch: str, merchant_order_id: str) -> str:
    return f"{PREFIX}:{{{mch}}}:orders:{merchant_order_id}"


def refund(mch: str, re_id: str) -> str:
    return f"{PREFIX}:{{{mch}}}:refund:{re_id}"


def payment_refunds(mch: str, pay_id: str) -> str:
    return f"{PREFIX}:{{{mch}}}:pay:{pay_id}:refunds"


def merchant_refund(mch: str, merchant_refund_id: str) -> str:
    return f"{PREFIX}:{{{mch}}}:mrefund:{merchant_refund_id}"


def idempotency(mch: str, key: str) -> str:
    return f"{PREFIX}:{{{mch}}}:idem:{_digest(key)}"


def nonce(mch: str, value: str) -> str:
    return f"{PREFIX}:{{{mch}}}:nonce:{_digest(value)}"


def merchant_keys(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:keys"


def merchants() -> str:
    return f"{PREFIX}:merchants"


def api_key(key_id: str) -> str:
    return f"{PREFIX}:key:{key_id}"


def api_key_hash(secret_hash: str) -> str:
    return f"{PREFIX}:keyhash:{secret_hash}"


def owner(object_id: str) -> str:
    """The merchant that owns a payment or a refund, by its (prefixed, unique) id."""
    return f"{PREFIX}:payref:{object_id}"


def payment_schedule() -> str:
    return f"{PREFIX}:{{sched}}:payments"


def fallback_secret_key() -> str:
    return f"{PREFIX}:{{sys}}:secret-key"


def secret_key_check() -> str:
    return f"{PREFIX}:{{sys}}:secret-key-check"


def breaker(account: str) -> str:
    return f"{PREFIX}:{{cb:{account}}}:state"


def breaker_probes(account: str) -> str:
    return f"{PREFIX}:{{cb:{account}}}:probes"


def health_bucket(account: str, bucket: int) -> str:
    return f"{PREFIX}:{{cb:{account}}}:w:{bucket}"


def event(mch: str, evt_id: str) -> str:
    return f"{PREFIX}:{{{mch}}}:evt:{evt_id}"


def event_attempts(mch: str, evt_id: str) -> str:
    return f"{PREFIX}:{{{mch}}}:evt:{evt_id}:attempts"


def events(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:events"


def outbox(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:outbox"


def dead_letters(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:dead"


def webhook_retries() -> str:
    return f"{PREFIX}:{{webhooks}}:retry"


def disabled_endpoints(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:disabled-endpoints"


def disabled_endpoint_info(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:disabled-endpoints:info"


def webhook_faults(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:webhook-faults"
