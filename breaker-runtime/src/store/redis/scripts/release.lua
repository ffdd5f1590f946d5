-- RELEASE (after clock.lua and prologue.lua): a probe lease given back with its outcome. A
-- lease no longer held (it ran out, or belongs to an earlier episode) is ignored. A lease given
-- back unused is announced (same state, a new generation), so instances that were told the
-- slots are taken ask again. Typed call: `Release` (scripts.rs).
--
-- KEYS[1]  state hash          <prefix>:{name}:s
-- KEYS[2]  window hash         <prefix>:{name}:w
-- KEYS[3]  probe leases        <prefix>:{name}:p
-- KEYS[4]  failing instances   <prefix>:{name}:q
-- ARGV[1]  lease token
-- ARGV[2]  outcome: 1 succeeded, 0 failed, 2 abandoned
-- ARGV[3]  probe limit (half_open_probes)
-- ARGV[4]  events channel      <prefix>:events
-- ARGV[5]  name
-- ARGV[6]  open ms
-- ARGV[7]  max open ms
-- ARGV[8]  the highest generation the instance has seen
-- Reply: {held (0/1), 0, then as RECORD's}

local token, outcome, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local channel, name = ARGV[4], ARGV[5]
local open_ms, max_open_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
local function reply(held) return tail(held, 0, state, gen, remaining(), forced, opens) end
if lost then return reply(0) end
if redis.call('ZREM', KEYS[3], token) == 0 then return reply(0) end
if forced ~= '' or state ~= 'half_open' then return reply(1) end
if outcome == 1 then
  local ok = redis.call('HINCRBY', KEYS[1], 'probe_ok', 1)
  if ok >= limit then
    state, opens = 'closed', 0
    redis.call('HSET', KEYS[1], 'probe_ok', 0)
    redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
    save_and_publish(channel, name)
  end
elseif outcome == 0 then
  reopen(open_ms, max_open_ms)
  save_and_publish(channel, name)
else
  save_and_publish(channel, name)
end
return reply(1)
