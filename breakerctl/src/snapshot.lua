-- SNAPSHOT (breakerctl's own, read only): everything `status` shows of one breaker in one round
-- trip, on Redis's clock.
--
-- KEYS[1]  state hash          <prefix>:{name}:s
-- KEYS[2]  window hash         <prefix>:{name}:w
-- KEYS[3]  instances           <prefix>:{name}:i
-- KEYS[4]  failing instances   <prefix>:{name}:q
-- ARGV[1]  ms within which an instance counts as seen
-- Reply: {now, state hash (flat), window hash (flat), window PTTL, instances seen within ARGV[1]
-- ms, failing instances (flat: instance, bucket of its last failure)}

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HGETALL', KEYS[1])
local w = redis.call('HGETALL', KEYS[2])
local pttl = redis.call('PTTL', KEYS[2])
local i = redis.call('ZRANGEBYSCORE', KEYS[3], now - tonumber(ARGV[1]), '+inf')
local q = redis.call('HGETALL', KEYS[4])
return {now, s, w, pttl, i, q}
