-- DELIVERED: the alert of the transition to ARGV[1] was delivered: it leaves the queue.
-- Typed call: `Delivered` (scripts.rs).
--
-- KEYS[1]  state hash          <prefix>:{name}:s
-- ARGV[1]  gen of the alert
-- Reply: 1

redis.call('HDEL', KEYS[1], 'a:' .. ARGV[1])
local list = redis.call('HGET', KEYS[1], 'alerts') or ''
local rest = {}
for g in string.gmatch(list, '%d+') do
  if g ~= ARGV[1] then rest[#rest + 1] = g end
end
redis.call('HSET', KEYS[1], 'alerts', table.concat(rest, ','))
return 1
