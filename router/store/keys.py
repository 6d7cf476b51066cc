"""Every Redis key payrouter uses, in one place, and how they spread over a Redis Cluster.

The work of payments is spread over `PARTITIONS` partitions, each one hash tag (one Cluster
slot). A payment's partition is chosen from its merchant and `merchant_order_id`, so the
uniqueness of that id is checked in the same slot (and the same script) that writes the
payment; the partition is carried in the payment's id (`router.ids.new_id(..., partition)`),
so everything that only knows the id (a channel callback, `GET /v1/payments/{id}`) finds it.
A payment's refunds and events live in its partition, so every state change (status, refund
totals, the event it emits, its outbox entry, its re-query schedule entry) is one script in
one slot. Schedules, outboxes and retry queues are per partition: no key is shared by every
payment. A large merchant's payments spread like anyone's: the merchant id is not the tag.

The tags are chosen so that partition `i` lands in the `i`-th of `PARTITIONS` equal ranges of
the 16384 slots: a Cluster whose primaries hold equal contiguous slot ranges (what `redis-cli
--cluster create` makes) holds equal numbers of partitions. `PARTITIONS` is fixed: it decides
where a `merchant_order_id` is checked, so changing it with data in place would let an order
id be used twice.

    pr:{P}:pay:{pay_id}              hash    one payment (fields: see router.store.payments)
    pr:{P}:pay:{pay_id}:refunds      zset    its refund ids by created_at (ms)
    pr:{P}:refund:{re_id}            hash    one refund (in its payment's partition)
    pr:{P}:evt:{evt_id}              hash    a webhook event: type, data, delivery state
    pr:{P}:evt:{evt_id}:attempts     list    its delivery attempts (JSON), oldest first
    pr:{P}:m:{mch}:payments          zset    the merchant's payment ids in P, by created (ms)
    pr:{P}:m:{mch}:events            zset    the merchant's event ids in P, by created (ms)
    pr:{P}:m:{mch}:dead              zset    the merchant's dead letters in P, by time (ms)
    pr:{P}:m:{mch}:order:{moid}      hash    a merchant_order_id: `current` (the payment
                                             that holds it), `pay:<id>` (every payment made
                                             with it: created ms), `key:<sha256(k)>` (the
                                             payment made under Idempotency-Key k)
    pr:{P}:due                       zset    "payment|refund/mch/id" by next re-query (ms)
    pr:{P}:outbox                    stream  events to deliver (consumer group "dispatch")
    pr:{P}:changes                   stream  objects changed, for the record (consumer group
                                             "record"): fields kind -> id (pay, re, evt), or
                                             a self-contained row (mch, key, ntf)
    pr:{P}:retire                    zset    "kind/id/version" by when it leaves Redis (ms)
    pr:{P}:webhook-retry             zset    "mch/evt_id" by the next delivery attempt (ms)
    pr:{P}:webhook-faults            hash    event id -> deliveries that failed unrecorded
    pr:{Q}:idem:{mch}:{sha256(key)}  string  an idempotency record (JSON, 25 h); Q from the key
    pr:{R}:m:{mch}:mrefund:{id}      string  the payment a merchant_refund_id was claimed
                                             for; R from the merchant_refund_id
    pr:{mch}:merchant                hash    merchant profile
    pr:{mch}:keys                    set     the merchant's API key ids
    pr:{mch}:disabled-endpoints      set     webhook URLs that answered 410
    pr:{mch}:disabled-endpoints:info hash    URL -> JSON {at_ms, event}: when and why
    pr:{mch}:links                   zset    the merchant's payment link ids, by created (ms)
    pr:{plink_id}:link               hash    a payment link (router.store.links); its own slot
    pr:merchants                     set     all merchant ids
    pr:key:{key_id}                  hash    an API key: owner, mode, hash, encrypted secret
    pr:keyhash:{sha256(secret)}      string  key id, for bearer lookup
    pr:nonce:{mch}:{sha256(nonce)}   string  a signed-request nonce (inside the window)
    pr:{sys}:secret-key              string  fallback encryption key (embedded/dev use only)
    pr:{sys}:secret-key-check        string  a known text sealed under the store's secret key
    pr:{cb:account}:state            hash    an account's breaker, override and health summary
    pr:{cb:account}:probes           zset    half-open probe calls in flight, by start (ms)
    pr:{cb:account}:w:{bucket}       hash    one bucket of the sliding window: ok, fail, lat
    pr:{rk:mch}:rl:{kind}            string  the merchant's token bucket for creates, reads
                                             or refunds (GCRA: theoretical arrival, ms)
    pr:{rk:mch}:rl:{kind}:k:{key_id} string  the same, per API key
    pr:{rk:mch}:v:{s}:{h}:{w}        hash    velocity: window w of subject s (payer, ip,
                                             merchant; h = sha256 of its value): per
                                             bucket n, `<n>c` count, `<n>s` sum, `<n>f` failed
    pr:{rk:mch}:v:ipp:{h}            zset    payer ids (sha256) seen from an IP, by last ms
    pr:{rl:global}:rl:{kind}         string  the token bucket of every merchant together
    pr:{risk}:lists                  set     the names of the operators' risk lists
    pr:{risk}:list:{name}            set     one list's entries (payer ids, IP networks)
    pr:lease:{name}                  string  a lease for one process's work: its holder's
                                             token, or `done:<token>` (router.store.leases;
                                             `recon:<YYYY-MM-DD>`: that day's reconciliation)

(`{P}` stands for the partition's tag, `p<i>.<n>`.) A merchant's rate limits and velocity
counters share the tag `{rk:mch}`, so a create takes its tokens and counts its velocity in
one script in one slot (docs/risk.md, "Where the counters live").

Merchant-level keys are read rarely (and cached by routers); the API key records and the
nonces are single-key. Where one change still spans slots (an idempotency record and the
payment it made, a merchant_refund_id claim and its refund, an API key and its lookup
entries), the order of the writes makes a crash between them harmless: docs/architecture.md,
"State in Redis".
"""

from __future__ import annotations

import hashlib
import zlib

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from router.ids import partition_code, partition_of_code

PREFIX = "pr"
PARTITIONS = 64
"""How many partitions payments are spread over (a fixed part of the key layout)."""


def _partition_tags() -> tuple[str, ...]:
    span = REDIS_CLUSTER_HASH_SLOTS // PARTITIONS
    tags = []
    for index in range(PARTITIONS):
        salt = 0
        while key_slot(f"p{index}.{salt}".encode()) // span != index:
            salt += 1
        tags.append(f"p{index}.{salt}")
    return tuple(tags)


TAGS = _partition_tags()
"""The hash tag of each partition, by index."""
_TAG_INDEX = {tag: index for index, tag in enumerate(TAGS)}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _spread(*parts: str) -> int:
    return zlib.crc32("\x00".join(parts).encode()) % PARTITIONS


def order_partition(mch: str, merchant_order_id: str) -> int:
    """The partition of a payment, chosen from what makes it unique."""
    return _spread("order", mch, merchant_order_id)


def key_partition(mch: str, idempotency_key: str) -> int:
    return _spread("idem", mch, idempotency_key)


def merchant_refund_partition(mch: str, merchant_refund_id: str) -> int:
    return _spread("mrefund", mch, merchant_refund_id)


def partition_of(object_id: str) -> int:
    """The partition carried in a payment, refund or event id (any string reads as one, so a
    made-up id is looked up, and not found, like any other)."""
    return partition_of_code(object_id) % PARTITIONS


def code(partition: int) -> str:
    """What an id minted in `partition` carries (`router.ids.new_id`)."""
    return partition_code(partition)


def _in(partition: int) -> str:
    return f"{PREFIX}:{{{TAGS[partition]}}}"


def _of(object_id: str) -> str:
    return _in(partition_of(object_id))


def payment(pay_id: str) -> str:
    return f"{_of(pay_id)}:pay:{pay_id}"


def payment_refunds(pay_id: str) -> str:
    return f"{_of(pay_id)}:pay:{pay_id}:refunds"


def refund(re_id: str) -> str:
    return f"{_of(re_id)}:refund:{re_id}"


def event(evt_id: str) -> str:
    return f"{_of(evt_id)}:evt:{evt_id}"


def event_attempts(evt_id: str) -> str:
    return f"{_of(evt_id)}:evt:{evt_id}:attempts"


def payments_by_created(partition: int, mch: str) -> str:
    return f"{_in(partition)}:m:{mch}:payments"


def events(partition: int, mch: str) -> str:
    return f"{_in(partition)}:m:{mch}:events"


def dead_letters(partition: int, mch: str) -> str:
    return f"{_in(partition)}:m:{mch}:dead"


def order(mch: str, merchant_order_id: str) -> str:
    """The hash of a merchant_order_id: which payment holds it, every payment made with it,
    and the payments made under Idempotency-Keys (`scripts.CREATE_PAYMENT`)."""
    partition = order_partition(mch, merchant_order_id)
    return f"{_in(partition)}:m:{mch}:order:{merchant_order_id}"


def key_field(idempotency_key: str) -> str:
    """The order hash's field naming the payment made under an Idempotency-Key."""
    return f"key:{_digest(idempotency_key)}"


def schedule(partition: int) -> str:
    return f"{_in(partition)}:due"


def outbox(partition: int) -> str:
    return f"{_in(partition)}:outbox"


def changes(partition: int) -> str:
    """The partition's change stream: what the drainer copies to the record."""
    return f"{_in(partition)}:changes"


def retire(partition: int) -> str:
    """The partition's retention schedule: final, recorded objects by when they leave Redis."""
    return f"{_in(partition)}:retire"


def spread(*parts: str) -> int:
    """A partition for something that has none of its own (a merchant's change, a channel
    notification): the same input always lands in the same one."""
    return _spread(*parts)


def outbox_partition(stream: str) -> int:
    """The partition of an outbox stream, by its key."""
    return _TAG_INDEX[stream.split("{", 1)[1].split("}", 1)[0]]


def webhook_retries(partition: int) -> str:
    return f"{_in(partition)}:webhook-retry"


def webhook_faults(partition: int) -> str:
    return f"{_in(partition)}:webhook-faults"


def idempotency(mch: str, key: str) -> str:
    return f"{_in(key_partition(mch, key))}:idem:{mch}:{_digest(key)}"


def merchant_refund_claim(mch: str, merchant_refund_id: str) -> str:
    partition = merchant_refund_partition(mch, merchant_refund_id)
    return f"{_in(partition)}:m:{mch}:mrefund:{merchant_refund_id}"


def merchant(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:merchant"


def payment_link(link_id: str) -> str:
    return f"{PREFIX}:{{{link_id}}}:link"


def merchant_links(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:links"


def merchant_keys(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:keys"


def disabled_endpoints(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:disabled-endpoints"


def disabled_endpoint_info(mch: str) -> str:
    return f"{PREFIX}:{{{mch}}}:disabled-endpoints:info"


def merchants() -> str:
    return f"{PREFIX}:merchants"


def api_key(key_id: str) -> str:
    return f"{PREFIX}:key:{key_id}"


def api_key_hash(secret_hash: str) -> str:
    return f"{PREFIX}:keyhash:{secret_hash}"


def nonce(mch: str, value: str) -> str:
    return f"{PREFIX}:nonce:{mch}:{_digest(value)}"


def fallback_secret_key() -> str:
    return f"{PREFIX}:{{sys}}:secret-key"


def secret_key_check() -> str:
    return f"{PREFIX}:{{sys}}:secret-key-check"


def lease(name: str) -> str:
    """A lease one router process holds for shared work (`router.store.leases`)."""
    return f"{PREFIX}:lease:{name}"


def breaker(account: str) -> str:
    return f"{PREFIX}:{{cb:{account}}}:state"


def breaker_probes(account: str) -> str:
    return f"{PREFIX}:{{cb:{account}}}:probes"


def health_bucket(account: str, bucket: int) -> str:
    return f"{PREFIX}:{{cb:{account}}}:w:{bucket}"


def _risk(mch: str) -> str:
    return f"{PREFIX}:{{rk:{mch}}}"


def rate_bucket(mch: str, kind: str, key_id: str | None = None) -> str:
    """A merchant's token bucket for `kind`, or its API key's."""
    base = f"{_risk(mch)}:rl:{kind}"
    return base if key_id is None else f"{base}:k:{key_id}"


def global_rate_bucket(kind: str) -> str:
    return f"{PREFIX}:{{rl:global}}:rl:{kind}"


def velocity_window(mch: str, subject: str, value: str, window: str) -> str:
    """A velocity window's buckets; the subject's value is hashed (any string is safe)."""
    return f"{_risk(mch)}:v:{subject}:{_digest(value)[:24]}:{window}"


def ip_payers(mch: str, ip: str) -> str:
    return f"{_risk(mch)}:v:ipp:{_digest(ip)[:24]}"


def payer_member(payer_id: str) -> str:
    """How a payer id is kept in `ip_payers`."""
    return _digest(payer_id)[:24]


def risk_lists() -> str:
    return f"{PREFIX}:{{risk}}:lists"


def risk_list(name: str) -> str:
    return f"{PREFIX}:{{risk}}:list:{name}"
