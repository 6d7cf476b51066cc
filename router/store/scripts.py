"""The Lua scripts behind every state change. Each runs atomically inside Redis.

A script touches only keys passed in KEYS, all sharing one hash tag (see `router.store.keys`),
so each works unchanged on Redis Cluster, in one slot. Status ranks live here because the rule
"a status never moves backwards" must be enforced where the write happens, not in Python.
"""

from __future__ import annotations

PAYMENT_HIDDEN = (
    "merchant_id",
    "created_ms",
    "client_ip",
    "payer_id",
    "buyer_action",
    "abandoned",
    "amount_reserved",
    "v",
)
"""Fields of a payment's hash that merchants never see: not in the API's answers (the store
drops them when it reads), nor in the `data` of the events the scripts write."""
_PAYMENT_SKIP = "{" + ", ".join(f"{name} = true" for name in PAYMENT_HIDDEN) + "}"

_EMIT = """
-- Versions and the change stream: every script that changes a payment, refund or event
-- raises the object's hidden version `v` (in the write it makes anyway) and appends
-- `kind id ...` to its partition's change stream in the same step, for the record's drainer
-- (router.record.drain), which copies each object's current state with its version.
-- The outbox: an event is written in the same script as the status change it reports, so
-- there is no moment where the status changed and the event does not exist.
local function render(key, skip)
  local flat = redis.call('HGETALL', key)
  local parts = {}
  for i = 1, #flat, 2 do
    local name, value = flat[i], flat[i + 1]
    if not skip[name] then
      if name == 'id' or name == 'status' then
        value = '"' .. value .. '"'
      end
      parts[#parts + 1] = '"' .. name .. '":' .. value
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function emit(object_key, skip, event_key, index_key, outbox_key, id, kind, at, at_ms,
                    payment_id, merchant_id)
  redis.call('HSET', event_key, 'id', id, 'type', kind, 'created_at', at, 'created_ms', at_ms,
             'payment_id', payment_id, 'merchant_id', merchant_id,
             'data', render(object_key, skip), 'state', 'pending', 'attempt_count', 0, 'v', 1)
  redis.call('ZADD', index_key, tonumber(at_ms), id)
  redis.call('XADD', outbox_key, '*', 'event', id, 'mch', merchant_id)
end
"""

CREATE_PAYMENT = """
-- KEYS: payment hash, order hash (its merchant_order_id), the merchant's created index, the
--       partition's re-query schedule, its change stream (all in the payment's partition)
-- ARGV: pay_id, created_ms, the order hash's field for the request's Idempotency-Key
--       ('' = none), due_ms, schedule member, the payment holding the order in the record
--       ('' = none known), then field/value pairs
-- Returns {1, pay_id} | {0, id of the payment holding the order}
--       | {2, id of the payment an earlier attempt made under the same key}.
-- The record's holder counts only when the order hash is gone (its payments left Redis after
-- PAYROUTER_REDIS_RETENTION); a hash that is there knows better.
-- The order hash holds the order: `current` (the payment that holds it), `pay:<id>` (every
-- payment made with it, when) and `key:<digest>` (the payment made under an
-- Idempotency-Key). The key's binding lives here, not with the idempotency record (another
-- slot): a retry under the key (the same request, so the same order and partition) that took
-- over from an attempt that died meets the payment it made in the step that would otherwise
-- write a second one.
local found = redis.call('HMGET', KEYS[2], 'current', ARGV[3])
if ARGV[3] ~= '' and found[2] then
  return {2, found[2]}
end
if found[1] then
  return {0, found[1]}
end
if ARGV[6] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then
  return {0, ARGV[6]}
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'current', ARGV[1], 'pay:' .. ARGV[1], ARGV[2], ARGV[3],
             ARGV[1])
else
  redis.call('HSET', KEYS[2], 'current', ARGV[1], 'pay:' .. ARGV[1], ARGV[2])
end
redis.call('HSET', KEYS[1], 'v', 1, unpack(ARGV, 7))
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(ARGV[4]), ARGV[5])
redis.call('XADD', KEYS[5], '*', 'pay', ARGV[1])
return {1, ARGV[1]}
"""

TRANSITION = (
    _EMIT
    + """
-- KEYS: payment hash, order hash of its merchant_order_id, then for the event it may emit:
--       event hash, the merchant's events index, the partition's outbox stream; then the
--       partition's change stream
-- ARGV: new status, required current status ('' = any), event id, event time (RFC 3339),
--       event time (ms), merchant id, payment id, then field/value pairs
-- Returns {applied (0/1), status now}. Reaching a final status emits `payment.<status>`.
local rank = {processing = 0, pending = 1, succeeded = 2, failed = 2, closed = 2}
local now = redis.call('HMGET', KEYS[1], 'status', 'v')
local current = now[1]
if not current then
  return {0, ''}
end
local wanted = ARGV[1]
if ARGV[2] ~= '' and ARGV[2] ~= current then
  return {0, current}
end
if wanted ~= current and rank[wanted] <= rank[current] then
  return {0, current}
end
if wanted == current and rank[current] == 2 then
  return {0, current}
end
redis.call('HSET', KEYS[1], 'status', wanted, 'v', tonumber(now[2] or '0') + 1, unpack(ARGV, 8))
local id = ARGV[7]
if wanted == 'failed' then
  -- A failed payment gives its merchant_order_id back, so the merchant can try again.
  if redis.call('HGET', KEYS[2], 'current') == id then
    redis.call('HDEL', KEYS[2], 'current')
  end
end
if rank[wanted] == 2 then
  local skip = """
    + _PAYMENT_SKIP
    + """
  emit(KEYS[1], skip, KEYS[3], KEYS[4], KEYS[5], ARGV[3], 'payment.' .. wanted, ARGV[4],
       ARGV[5], id, ARGV[6])
  redis.call('XADD', KEYS[6], '*', 'pay', id, 'evt', ARGV[3])
else
  redis.call('XADD', KEYS[6], '*', 'pay', id)
end
return {1, wanted}
"""
)

_IDEMPOTENCY_RECORD = """
-- An idempotency record is one string, a JSON object: fp (the request's fingerprint), state
-- (running | done), token (the running request's), lease_until (ms, as text), status and
-- body (the answer to replay). One GET and one SET per step.
local function read(key)
  local raw = redis.call('GET', key)
  if not raw then
    return nil
  end
  local ok, rec = pcall(cjson.decode, raw)
  if ok and type(rec) == 'table' then
    return rec
  end
  return {fp = '', state = 'damaged'}
end
"""

IDEMPOTENCY_BEGIN = (
    _IDEMPOTENCY_RECORD
    + """
-- KEYS: idempotency record
-- ARGV: fingerprint, owner token, now_ms, lease_ms, ttl_s
-- Returns {'new'} | {'mismatch'} | {'in_flight', lease_until_ms} | {'replay', status, body}
local rec = read(KEYS[1])
local until_ms = tostring(tonumber(ARGV[3]) + tonumber(ARGV[4]))
if not rec then
  redis.call('SET', KEYS[1], cjson.encode({fp = ARGV[1], state = 'running', token = ARGV[2],
                                           lease_until = until_ms}), 'EX', tonumber(ARGV[5]))
  return {'new'}
end
if rec.fp ~= ARGV[1] then
  return {'mismatch'}
end
if rec.state == 'done' then
  return {'replay', rec.status, rec.body}
end
if tonumber(rec.lease_until) > tonumber(ARGV[3]) then
  return {'in_flight', rec.lease_until}
end
-- The attempt that held the key died: this request takes over. Whatever that attempt made
-- under the key is found where it was made (CREATE_PAYMENT, CREATE_REFUND).
rec.token = ARGV[2]
rec.lease_until = until_ms
redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
return {'new'}
"""
)

IDEMPOTENCY_RENEW = (
    _IDEMPOTENCY_RECORD
    + """
-- KEYS: idempotency record
-- ARGV: owner token, lease until (ms)
-- Returns 1 while the caller still owns the running record, else 0.
local rec = read(KEYS[1])
if not rec or rec.token ~= ARGV[1] or rec.state ~= 'running' then
  return 0
end
rec.lease_until = ARGV[2]
redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
return 1
"""
)

IDEMPOTENCY_FINISH = (
    _IDEMPOTENCY_RECORD
    + """
-- KEYS: idempotency record
-- ARGV: owner token, status, body, ttl_s
local rec = read(KEYS[1])
if not rec or rec.token ~= ARGV[1] then
  return 0
end
rec.state = 'done'
rec.status = ARGV[2]
rec.body = ARGV[3]
redis.call('SET', KEYS[1], cjson.encode(rec), 'EX', tonumber(ARGV[4]))
return 1
"""
)

IDEMPOTENCY_RELEASE = (
    _IDEMPOTENCY_RECORD
    + """
-- KEYS: idempotency record
-- ARGV: owner token
-- An answer that is not remembered lets a retry run again: the record goes. A payment or
-- refund the request made stays bound to the key where it was made, so the retry answers
-- about it instead of making a second one.
-- Returns 1 (forgotten) or 0 (not the owner).
local rec = read(KEYS[1])
if not rec or rec.token ~= ARGV[1] or rec.state ~= 'running' then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
"""
)

CLAIM_DUE = """
-- KEYS: schedule zset
-- ARGV: now_ms, lease_ms, limit
-- Takes up to `limit` members due by now and pushes each one lease ahead, so that another
-- process polling the same schedule does not take it while this one works on it.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', until_ms, member)
end
return due
"""

CREATE_REFUND = """
-- KEYS: payment hash, refund hash, payment's refunds zset, the partition's re-query
--       schedule, its change stream (all in the payment's partition)
-- ARGV: refund_id, amount (0 = all that is left), created_ms, due_ms, schedule member,
--       payment id, then field/value pairs for the refund hash (the script adds 'amount' and
--       'refundable_before': what was left to refund, so a repeat of the merchant_refund_id
--       without an amount, "all that is left", can be told apart from a different request)
-- Returns {'created', amount} | {'exists', refund_id} | {'not_refundable', status}
--       | {'exceeds', refundable}
-- A refund named by the merchant (merchant_refund_id) or made under an Idempotency-Key has an
-- id derived from that name (`router.ids.derived_id`): a second attempt meets the first here.
-- The running total (amount_reserved: pending + succeeded refunds) is checked and raised in
-- the same step, so concurrent refunds can never add up to more than the payment.
-- A refund that left Redis (PAYROUTER_REDIS_RETENTION) stays named in its payment's index.
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return {'exists', ARGV[1]}
end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'succeeded' then
  return {'not_refundable', status or ''}
end
local total = tonumber(redis.call('HGET', KEYS[1], 'amount'))
local reserved = tonumber(redis.call('HGET', KEYS[1], 'amount_reserved') or '0')
local amount = tonumber(ARGV[2])
if amount == 0 then
  amount = total - reserved
end
if amount <= 0 or reserved + amount > total then
  return {'exceeds', tostring(total - reserved)}
end
redis.call('HINCRBY', KEYS[1], 'amount_reserved', amount)
-- The payment's version moves too: a refund pending keeps it in Redis (retention).
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[2], 'amount', tostring(amount), 'refundable_before',
           tostring(total - reserved), 'v', 1, unpack(ARGV, 7))
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(ARGV[4]), ARGV[5])
redis.call('XADD', KEYS[5], '*', 're', ARGV[1], 'pay', ARGV[6])
return {'created', tostring(amount)}
"""

REFUND_TRANSITION = (
    _EMIT
    + """
-- KEYS: refund hash, its payment's hash, event hash, the merchant's events index, the
--       partition's outbox stream, its change stream
-- ARGV: new status (pending|succeeded|failed), event id, event time (RFC 3339), event time
--       (ms), the payment's id, merchant id, then field/value pairs
-- Returns {applied (0/1), status now}. Only a pending refund changes; a succeeded one raises
-- the payment's amount_refunded, a failed one gives its amount back to what can be refunded;
-- both emit `refund.<status>`.
local now = redis.call('HMGET', KEYS[1], 'status', 'amount', 'v', 'id')
local current = now[1]
if not current then
  return {0, ''}
end
if current ~= 'pending' then
  return {0, current}
end
local wanted = ARGV[1]
local amount = tonumber(now[2])
if wanted == 'succeeded' then
  redis.call('HINCRBY', KEYS[2], 'amount_refunded', amount)
elseif wanted == 'failed' then
  redis.call('HINCRBY', KEYS[2], 'amount_reserved', -amount)
end
redis.call('HSET', KEYS[1], 'status', wanted, 'v', tonumber(now[3] or '0') + 1, unpack(ARGV, 7))
if wanted ~= 'pending' then
  redis.call('HINCRBY', KEYS[2], 'v', 1)
  emit(KEYS[1], {merchant_id = true, created_ms = true, refundable_before = true, v = true},
       KEYS[3], KEYS[4], KEYS[5], ARGV[2], 'refund.' .. wanted, ARGV[3], ARGV[4], ARGV[5],
       ARGV[6])
  redis.call('XADD', KEYS[6], '*', 're', now[4], 'pay', ARGV[5], 'evt', ARGV[2])
else
  redis.call('XADD', KEYS[6], '*', 're', now[4])
end
return {1, wanted}
"""
)

BREAKER_ADMIT = """
-- KEYS: breaker state hash, probes zset
-- ARGV: now_ms, probe_id, max_probes, probe_timeout_ms
-- Returns {admitted (0/1), state, probe_id or ''}. An open breaker whose time is up turns
-- half-open here; a half-open breaker admits at most max_probes calls at once across every
-- process (a probe whose process died frees its slot after probe_timeout_ms).
local now = tonumber(ARGV[1])
local forced = redis.call('HGET', KEYS[1], 'forced')
if forced == 'open' then
  return {0, 'forced_open', ''}
elseif forced == 'closed' then
  return {1, 'forced_closed', ''}
end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
  return {1, 'closed', ''}
end
if state == 'open' then
  if now < tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0') then
    return {0, 'open', ''}
  end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_ok', 0, 'changed_ms', now)
  redis.call('DEL', KEYS[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[2], now, ARGV[2])
  return {1, 'half_open', ARGV[2]}
end
return {0, 'half_open', ''}
"""

BREAKER_RECORD = """
-- KEYS: breaker state hash, probes zset, then the window's bucket hashes (current first)
-- ARGV: now_ms, outcome (ok|fail|neutral), latency_ms, probe_id or '', bucket_ttl_s,
--       min_calls, failure_rate, consecutive_limit, open_ms, max_open_ms, jitter (0..1,
--       drawn by the caller), close_after, grow ('1': a failed probe doubles the next open
--       span; '0': it was refused at once, and the span is open_ms again), then the caller's
--       own fields for this call (a count, then field, increment, ...), then the caller's
--       successes not yet flushed: the time of the latest (0: none) and, for each of the
--       window's buckets in KEYS order, a count and that many field, increment pairs (`ok`
--       and `lat` among them)
-- Records the unflushed successes and then one call in the sliding window, and moves the
-- breaker. Returns the state now.
local now = tonumber(ARGV[1])
local outcome = ARGV[2]
local at = 14
local extra = tonumber(ARGV[at])
local extra_at = at + 1
at = at + 1 + 2 * extra
local last_ok_ms = tonumber(ARGV[at])
at = at + 1
-- Folded in first, so the trip decision below counts them.
local pending = 0
local key_index = 3
while at <= #ARGV and key_index <= #KEYS do
  local n = tonumber(ARGV[at])
  at = at + 1
  for i = 0, n - 1 do
    local name, by = ARGV[at + 2 * i], tonumber(ARGV[at + 2 * i + 1])
    redis.call('HINCRBY', KEYS[key_index], name, by)
    if name == 'ok' then
      pending = pending + by
    end
  end
  if n > 0 then
    redis.call('EXPIRE', KEYS[key_index], tonumber(ARGV[5]))
  end
  at = at + 2 * n
  key_index = key_index + 1
end
if outcome ~= 'neutral' then
  redis.call('HINCRBY', KEYS[3], outcome, 1)
  redis.call('HINCRBY', KEYS[3], 'lat', tonumber(ARGV[3]))
  for i = 0, extra - 1 do
    redis.call('HINCRBY', KEYS[3], ARGV[extra_at + 2 * i], tonumber(ARGV[extra_at + 2 * i + 1]))
  end
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[5]))
end
-- The window's totals matter here only when a failure may trip the breaker; health scores
-- are summed from the buckets by whoever reads them.
local calls, fails = 0, 0
if outcome == 'fail' then
  for i = 3, #KEYS do
    local b = redis.call('HMGET', KEYS[i], 'ok', 'fail')
    local ok, fail = tonumber(b[1] or '0'), tonumber(b[2] or '0')
    calls = calls + ok + fail
    fails = fails + fail
  end
end
local function trip(grow)
  -- Each trip doubles the open span, but after a probe the channel refused at once (cheap
  -- to repeat: nothing done, nobody kept waiting) it is open_ms again, so a recovery is seen
  -- within open_ms.
  local trips = 1
  if grow then
    trips = redis.call('HINCRBY', KEYS[1], 'trips', 1)
  else
    redis.call('HSET', KEYS[1], 'trips', 1)
  end
  local span = math.min(tonumber(ARGV[9]) * 2 ^ (trips - 1), tonumber(ARGV[10]))
  span = math.floor(span * (1 + 0.2 * tonumber(ARGV[11])))
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + span, 'consecutive', 0,
             'probe_ok', 0, 'changed_ms', now)
  redis.call('DEL', KEYS[2])
  return 'open'
end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[4] ~= '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
end
if state == 'half_open' and ARGV[4] ~= '' then
  if outcome == 'fail' then
    return trip(ARGV[13] == '1')
  elseif outcome == 'ok' then
    if redis.call('HINCRBY', KEYS[1], 'probe_ok', 1) >= tonumber(ARGV[12]) then
      redis.call('HSET', KEYS[1], 'state', 'closed', 'trips', 0, 'consecutive', 0,
                 'probe_ok', 0, 'changed_ms', now)
      redis.call('DEL', KEYS[2])
      -- Forget the failures that opened it, or the first new one would trip it again. The
      -- successes and latencies stay: they are what brings the account back into rotation.
      for i = 3, #KEYS do
        for _, name in ipairs(redis.call('HKEYS', KEYS[i])) do
          if name == 'fail' or string.sub(name, -5) == ':fail' then
            redis.call('HDEL', KEYS[i], name)
          end
        end
      end
      return 'closed'
    end
  end
  return 'half_open'
end
if state == 'closed' then
  -- A success breaks the run of failures only if no process recorded a failure after it.
  if pending > 0 and
     tonumber(redis.call('HGET', KEYS[1], 'fail_ms') or '0') <= last_ok_ms and
     (redis.call('HGET', KEYS[1], 'consecutive') or '0') ~= '0' then
    redis.call('HSET', KEYS[1], 'consecutive', 0)
  end
  if outcome == 'fail' then
    redis.call('HSET', KEYS[1], 'fail_ms', now)
    local run = redis.call('HINCRBY', KEYS[1], 'consecutive', 1)
    if run >= tonumber(ARGV[8]) or
       (calls >= tonumber(ARGV[6]) and fails / calls >= tonumber(ARGV[7])) then
      return trip(true)
    end
  elseif outcome == 'ok' and (redis.call('HGET', KEYS[1], 'consecutive') or '0') ~= '0' then
    redis.call('HSET', KEYS[1], 'consecutive', 0)
  end
end
return state
"""

BREAKER_FLUSH = """
-- KEYS: breaker state hash, then window bucket hashes
-- ARGV: bucket_ttl_s, the time of the latest success, then for each bucket a count and that
--       many field, increment pairs (`ok` and `lat` among them)
-- Adds one process's tally of plain successes to the window. Like a success recorded at
-- once, it breaks a closed breaker's run of failures, unless a failure came after it.
local at = 3
for i = 2, #KEYS do
  local n = tonumber(ARGV[at])
  at = at + 1
  for j = 0, n - 1 do
    redis.call('HINCRBY', KEYS[i], ARGV[at + 2 * j], tonumber(ARGV[at + 2 * j + 1]))
  end
  at = at + 2 * n
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1]))
end
if (redis.call('HGET', KEYS[1], 'consecutive') or '0') ~= '0' and
   (redis.call('HGET', KEYS[1], 'state') or 'closed') == 'closed' and
   tonumber(redis.call('HGET', KEYS[1], 'fail_ms') or '0') <= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'consecutive', 0)
end
return #KEYS - 1
"""

BREAKER_OVERRIDE = """
-- KEYS: breaker state hash, probes zset
-- ARGV: forced ('open' | 'closed' | '' to clear), now_ms
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'forced')
else
  redis.call('HSET', KEYS[1], 'forced', ARGV[1])
end
redis.call('HSET', KEYS[1], 'forced_ms', ARGV[2])
return ARGV[1]
"""

CLAIM_CHANNEL = """
-- KEYS: payment hash, the partition's change stream
-- ARGV: payment id, then field/value pairs (the account, wallet and buyer a checkout is paid
--       with)
-- Sets the fields if the payment is pending and has no channel yet, as a new version the
-- record drains. Returns 1 if set.
-- Two tabs of one checkout opened at once: only one of them creates the channel's order.
local now = redis.call('HMGET', KEYS[1], 'status', 'channel', 'v')
if now[1] ~= 'pending' then
  return 0
end
if now[2] and now[2] ~= 'null' then
  return 0
end
redis.call('HSET', KEYS[1], 'v', tonumber(now[3] or '0') + 1, unpack(ARGV, 2))
redis.call('XADD', KEYS[2], '*', 'pay', ARGV[1])
return 1
"""

HDEL_IF = """
-- KEYS: a hash
-- ARGV: a field, the value it must hold
-- Deletes the field if it holds that value. Returns 1 if deleted.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

DELETE_IF = """
-- KEYS: a string key
-- ARGV: the value it must hold
-- Deletes the key if it holds that value. Returns 1 if deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

REMOVE_IDLE_CONSUMERS = """
-- KEYS: an outbox stream
-- ARGV: group, min_idle_ms, only ('' = any consumer)
-- Removes the group's consumers that hold no pending entries and have been idle at least
-- min_idle_ms; in one script, so no entry can be handed to one between check and removal.
local info = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(info) ~= 'table' or info.err then
  return {}
end
local removed = {}
for _, row in ipairs(info) do
  local c = {}
  for i = 1, #row, 2 do
    c[row[i]] = row[i + 1]
  end
  if (ARGV[3] == '' or c['name'] == ARGV[3]) and tonumber(c['pending']) == 0
      and tonumber(c['idle']) >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], c['name'])
    table.insert(removed, c['name'])
  end
end
return removed
"""

READ_OUTBOX = """
-- KEYS: an outbox stream
-- ARGV: group, consumer, count
-- New entries for the consumer, as XREADGROUP (without BLOCK) gives them for one stream.
local answer = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', tonumber(ARGV[3]),
                          'STREAMS', KEYS[1], '>')
if not answer then
  return {}
end
return answer[1][2]
"""

ATOMIC = """
-- KEYS: the keys written (one hash tag)
-- ARGV: a JSON list of writes, each [command, index of its key in KEYS, args...]
-- Applies every write in order, atomically (a MULTI/EXEC without one: router.store.batch).
-- As in a MULTI/EXEC, a write that fails (a key of the wrong type) does not stop the others;
-- its error is its reply. Returns each write's reply, false for nil.
local replies = {}
for i, op in ipairs(cjson.decode(ARGV[1])) do
  local reply = redis.pcall(op[1], KEYS[op[2]], unpack(op, 3))
  if reply == nil then
    reply = false
  end
  replies[i] = reply
end
return replies
"""

RETIRE = """
-- KEYS: the partition's retention schedule, the object's hash, then by kind
--       pay: the merchant's payments index, the order hash, the payment's refunds index
--       evt: the event's attempts list, the merchant's events index
-- ARGV: the schedule's member, kind (pay | re | evt), id, the version the record has
-- Removes a final object the record holds from Redis, with its index entries, only if it is
-- still at the recorded version (a change since then is recorded, and scheduled, again) and,
-- for a payment, no refund of it is pending. Returns 1 if removed.
redis.call('ZREM', KEYS[1], ARGV[1])
local now = redis.call('HMGET', KEYS[2], 'v', 'amount_reserved', 'amount_refunded')
if now[1] ~= ARGV[4] then
  return 0
end
local kind, id = ARGV[2], ARGV[3]
if kind == 'pay' then
  if tonumber(now[2] or '0') ~= tonumber(now[3] or '0') then
    return 0
  end
  redis.call('DEL', KEYS[2], KEYS[5])
  redis.call('ZREM', KEYS[3], id)
  -- The order hash forgets this payment and the Idempotency-Keys bound to it; once it holds
  -- no payment at all it goes, and a create with its merchant_order_id asks the record.
  local flat = redis.call('HGETALL', KEYS[4])
  local others = 0
  for i = 1, #flat, 2 do
    local field, value = flat[i], flat[i + 1]
    if field == 'pay:' .. id or (string.sub(field, 1, 4) == 'key:' and value == id) then
      redis.call('HDEL', KEYS[4], field)
    elseif string.sub(field, 1, 4) == 'pay:' then
      others = others + 1
    end
  end
  if others == 0 then
    redis.call('DEL', KEYS[4])
  end
elseif kind == 'evt' then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('ZREM', KEYS[4], id)
else
  redis.call('DEL', KEYS[2])
end
return 1
"""

RESTORE_PAYMENT = """
-- KEYS: payment hash, its refunds index, the merchant's payments index
-- ARGV: pay_id, created_ms, number of refunds n, then n (refund id, created_ms) pairs, then
--       field/value pairs (with the record's version `v` and `amount_reserved`)
-- Puts a payment that left Redis back from the record, only if it is not there (another
-- process may have put it back, and changed it, first). Returns 1 if written.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  redis.call('ZADD', KEYS[2], tonumber(ARGV[5 + 2 * i]), ARGV[4 + 2 * i])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4 + 2 * n))
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[1])
return 1
"""

RESTORE_EVENT = """
-- KEYS: event hash, its attempts list, the merchant's events index
-- ARGV: evt_id, created_ms, number of attempts n, then n attempts (JSON), then field/value
--       pairs (with the record's version `v`)
-- Puts an event that left Redis back from the record (to resend it), only if it is not
-- there. Returns 1 if written.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local n = tonumber(ARGV[3])
redis.call('DEL', KEYS[2])
for i = 4, 3 + n do
  redis.call('RPUSH', KEYS[2], ARGV[i])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4 + n))
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[1])
return 1
"""

EMIT_ONCE = """
-- KEYS: event hash, the merchant's events index, the partition's outbox, its change stream
-- ARGV: evt_id, created_ms, merchant id, then field/value pairs (with `v`)
-- An event not tied to a payment's state change (`settlement.created`): written with its
-- outbox and change entries unless an event with that id is already there. Returns 1 if
-- written.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[1])
redis.call('XADD', KEYS[3], '*', 'event', ARGV[1], 'mch', ARGV[3])
redis.call('XADD', KEYS[4], '*', 'evt', ARGV[1])
return 1
"""

ALL = (
    EMIT_ONCE,
    CREATE_PAYMENT,
    TRANSITION,
    IDEMPOTENCY_BEGIN,
    IDEMPOTENCY_RENEW,
    IDEMPOTENCY_FINISH,
    IDEMPOTENCY_RELEASE,
    CLAIM_DUE,
    CREATE_REFUND,
    REFUND_TRANSITION,
    BREAKER_ADMIT,
    BREAKER_RECORD,
    BREAKER_FLUSH,
    BREAKER_OVERRIDE,
    DELETE_IF,
    HDEL_IF,
    REMOVE_IDLE_CONSUMERS,
    READ_OUTBOX,
    ATOMIC,
    RETIRE,
    RESTORE_PAYMENT,
    RESTORE_EVENT,
)
"""Loaded when a store opens, so batches can call them by hash (`router.store.batch`)."""
