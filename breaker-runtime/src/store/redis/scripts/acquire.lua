-- ACQUIRE (after clock.lua and prologue.lua): a HALF_OPEN probe lease, granted if fewer than
-- the probe limit are out (counting probes that already succeeded in this episode). A lease
-- that ran out is a failed probe. A Redis behind the instance grants nothing (the instance's
-- next RECORD writes the fleet's state back). Typed call: `Acquire` (scripts.rs).
--
-- KEYS[1]  state hash          <prefix>:{name}:s
-- KEYS[2]  window hash         <prefix>:{name}:w
-- KEYS[3]  probe leases        <prefix>:{name}:p
-- ARGV[1]  probe limit (half_open_probes)
-- ARGV[2]  lease ms
-- ARGV[3]  lease token (unique across the fleet)
-- ARGV[4]  events channel      <prefix>:events
-- ARGV[5]  name
-- ARGV[6]  open ms
-- ARGV[7]  max open ms
-- ARGV[8]  the highest generation the instance has seen
-- Reply: {granted (0/1), ms until a slot may free, then as RECORD's}

local limit, lease_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local channel, name = ARGV[4], ARGV[5]
local open_ms, max_open_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
local function reply(granted, wait) return tail(granted, wait, state, gen, remaining(), forced, opens) end
if lost then return reply(0, 0) end
if forced ~= '' then return reply(0, 0) end
clamp(open_ms, max_open_ms)
if state == 'open' and now >= open_until then
  start_half_open()
  save_and_publish(channel, name)
end
if state ~= 'half_open' then return reply(0, remaining()) end
-- A lease that ends further away than a lease lasts (the clock jumped back) is taken to end
-- a lease from now: held, not lost.
local future = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. (now + lease_ms), '+inf')
for _, member in ipairs(future) do
  redis.call('ZADD', KEYS[3], now + lease_ms, member)
end
if redis.call('ZCOUNT', KEYS[3], '-inf', now) > 0 then
  reopen(open_ms, max_open_ms)
  save_and_publish(channel, name)
  return reply(0, remaining())
end
local ok = int(redis.call('HGET', KEYS[1], 'probe_ok'), 'probe_ok')
if redis.call('ZCARD', KEYS[3]) + ok >= limit then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  local wait = 0
  if first[2] then wait = math.max(tonumber(first[2]) - now, 0) end
  return reply(0, wait)
end
redis.call('ZADD', KEYS[3], now + lease_ms, token)
redis.call('PEXPIRE', KEYS[3], lease_ms * 2 + 1000)
return reply(1, 0)
