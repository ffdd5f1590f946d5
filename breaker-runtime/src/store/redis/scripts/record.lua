-- RECORD (after clock.lua and prologue.lua): an instance's new successes and failures join the
-- fleet's window; the trip is decided from the fleet-wide counts on Redis's clock, and the reply
-- is the authoritative state, which the instance adopts. Also: OPEN → HALF_OPEN when its time
-- is up, a probe lease that ran out is a failed probe, and a Redis behind the instance (it lost
-- data) is told the fleet's state back. Typed call: `Record` (scripts.rs).
--
-- KEYS[1]  state hash          <prefix>:{name}:s
-- KEYS[2]  window hash         <prefix>:{name}:w  (`<bucket>:f` failures, `<bucket>:t` calls)
-- KEYS[3]  probe leases        <prefix>:{name}:p  (sorted set: token by expiry)
-- KEYS[4]  failing instances   <prefix>:{name}:q  (hash: instance → bucket of its last failure)
-- KEYS[5]  instances           <prefix>:{name}:i  (sorted set: instance by last record)
-- ARGV[1]  successes since the last record
-- ARGV[2]  failures since the last record
-- ARGV[3]  bucket ms (the window / 8)
-- ARGV[4]  threshold (failures in the window that trip)
-- ARGV[5]  failure rate in percent that trips (0: the rate rule is off)
-- ARGV[6]  min calls in the window before the rate rule applies
-- ARGV[7]  open ms (the first opening)
-- ARGV[8]  max open ms (openings in a row double up to this)
-- ARGV[9]  events channel      <prefix>:events
-- ARGV[10] name
-- ARGV[11] the fleet's state as the instance last saw it: remaining open ms
-- ARGV[12] ... its consecutive openings
-- ARGV[13] ... its state (`closed`, `open`, `half_open`)
-- ARGV[14] the instance's forced state (`open`, `closed`, empty)
-- ARGV[15] instance id (`host:pid:nonce`)
-- ARGV[16] quorum (distinct failing instances needed to trip)
-- ARGV[17] ms after which a silent instance is forgotten
-- ARGV[18] `0` when the instance is in shadow mode (it acts on no call), `1` when it
--          enforces: `enforcing_until` in the state hash is then moved to forget_ms from now,
--          and a fleet alert claimed before it runs out is not marked shadow (CLAIM)
-- ARGV[19] the highest generation the instance has seen (every script's last argument)
-- Reply: {state, gen, remaining ms, forced, opens, pending alert gen, cgen, reset_gen}

local succ, fail = tonumber(ARGV[1]), tonumber(ARGV[2])
local bucket_ms, threshold, rate = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local min_calls, open_ms, max_open_ms = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local channel, name = ARGV[9], ARGV[10]
local view_remaining, view_opens, view_state = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local local_forced, instance, quorum, forget_ms = ARGV[14], ARGV[15], tonumber(ARGV[16]), tonumber(ARGV[17])
-- Counts from an instance that has not seen the last operator reset were counted before it.
if seen_gen < int(h[8], 'reset_gen') then
  succ, fail = 0, 0
end
redis.call('ZADD', KEYS[5], now, instance)
do
  local e = redis.call('HMGET', KEYS[1], 'enforcing_until', 'shadow')
  -- With the operator's shadow mode written, only a forced-open instance acts on calls (a
  -- record still in flight from before the switch does not count).
  local acts = ARGV[18] ~= '0'
    and (e[2] ~= '1' or local_forced == 'open' or forced == 'open')
  if acts then
    -- Written when half of it has run out (a read costs less than a write), or when it is
    -- further ahead than it can be (a clock that jumped back, foreign data).
    local until_ms = tonumber(e[1] or '0') or 0
    if until_ms < now + forget_ms / 2 or until_ms > now + forget_ms then
      redis.call('HSET', KEYS[1], 'enforcing_until', now + forget_ms)
    end
  end
end
-- Forgetting silent instances is needed now and then, not at every record.
if now % 4 == 0 then redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - forget_ms) end
redis.call('PEXPIRE', KEYS[5], forget_ms * 2)
if lost then
  -- Redis lost the breaker, or went back in time: the fleet's state as this instance last saw
  -- it is written back (a forced state only by instances that saw it; never a trip of this
  -- instance's own), and generations go on from what it saw.
  gen = seen_gen
  forced = local_forced
  opens = math.min(math.max(view_opens, 0), 64)
  open_until = 0
  if forced == 'open' then
    state = 'open'
  elseif forced == 'closed' then
    state = 'closed'
  elseif view_state == 'open' and view_remaining > 0 then
    state, opens = 'open', math.max(opens, 1)
    open_until = now + math.min(view_remaining, max_open_ms)
  elseif view_state == 'open' or view_state == 'half_open' then
    opens = math.max(opens, 1)
    start_half_open()
  else
    state, opens = 'closed', 0
  end
  redis.call('DEL', KEYS[3], KEYS[4])
  save_and_publish(channel, name, 'store_reset')
end
clamp(open_ms, max_open_ms)
if forced == '' then
  if state == 'open' and now >= open_until then
    start_half_open()
    save_and_publish(channel, name)
  end
  if state == 'half_open' and redis.call('ZCOUNT', KEYS[3], '-inf', now) > 0 then
    -- A probe lease ran out (its holder crashed or hung): a failed probe.
    reopen(open_ms, max_open_ms)
    save_and_publish(channel, name)
  end
  if state == 'closed' and succ + fail > 0 then
    local bucket = math.floor(now / bucket_ms)
    -- For operators' tools, which read the window without knowing its length.
    redis.call('HSET', KEYS[1], 'bucket_ms', bucket_ms)
    if fail > 0 then
      redis.call('HINCRBY', KEYS[2], bucket .. ':f', fail)
      redis.call('HSET', KEYS[4], instance, bucket)
      redis.call('PEXPIRE', KEYS[4], bucket_ms * 9)
    end
    redis.call('HINCRBY', KEYS[2], bucket .. ':t', succ + fail)
    redis.call('PEXPIRE', KEYS[2], bucket_ms * 9)
    local f, tot = 0, 0
    local w = redis.call('HGETALL', KEYS[2])
    for i = 1, #w, 2 do
      local b, kind = string.match(w[i], '^(%d+):(%a)$')
      b = tonumber(b)
      local n = tonumber(w[i + 1]) or 0
      -- Buckets that slid out, and buckets from the future (a clock that jumped back).
      if b == nil or b <= bucket - 8 or b > bucket or n ~= n or n < 0 or n > 1e15 then
        redis.call('HDEL', KEYS[2], w[i])
      elseif kind == 'f' then f = f + n
      else tot = tot + n end
    end
    if f >= threshold or (rate > 0 and tot >= min_calls and f * 100 >= rate * tot) then
      -- The quorum: failures from at least `quorum` distinct instances in the window.
      local voters = 0
      local q = redis.call('HGETALL', KEYS[4])
      for i = 1, #q, 2 do
        local b = tonumber(q[i + 1])
        if b == nil or b <= bucket - 8 or b > bucket then
          redis.call('HDEL', KEYS[4], q[i])
        else
          voters = voters + 1
        end
      end
      if voters >= quorum then
        fleet_failures = f
        state, opens = 'open', 1
        open_until = now + open_for(open_ms, max_open_ms, 1)
        redis.call('DEL', KEYS[2], KEYS[4])
        save_and_publish(channel, name)
      end
    end
  end
end
return tail(state, gen, remaining(), forced, opens)
