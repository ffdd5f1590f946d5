-- WRITE_CONTROL (after clock.lua, before read_controls.lua): changes one control of a breaker
-- for every instance, bumps `cgen` and publishes the name on the controls channel; the reply is
-- READ_CONTROLS's. Typed call: `WriteControl` (scripts.rs).
--
-- KEYS[1]  state hash          <prefix>:{name}:s
-- ARGV[1]  op: `swap`, `fault`, `notice` or `shadow`
-- ARGV[2]  value: `swap`: `1`, `0` or `toggle`; `fault`: a fault in its canonical form, empty
--          to clear; `notice`: the text, empty to clear; `shadow`: `1` (shadow), `0`
--          (enforce) or empty (back to each instance's declared mode)
-- ARGV[3]  ms until it expires (0: until cleared)
-- ARGV[4]  controls channel    <prefix>:controls
-- ARGV[5]  name
-- Reply: as READ_CONTROLS's

local op, value, for_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]) or 0
local until_ms = 0
if for_ms > 0 and value ~= '' then until_ms = now + for_ms end
if op == 'swap' then
  if value == 'toggle' then
    value = (redis.call('HGET', KEYS[1], 'swapped') == '1') and '0' or '1'
  end
  redis.call('HSET', KEYS[1], 'swapped', value)
elseif op == 'fault' then
  redis.call('HSET', KEYS[1], 'fault', value, 'fault_until', until_ms)
elseif op == 'notice' then
  redis.call('HSET', KEYS[1], 'notice', value, 'notice_until', until_ms)
elseif op == 'shadow' then
  if value == '' then
    redis.call('HDEL', KEYS[1], 'shadow')
  elseif value == '1' or value == '0' then
    redis.call('HSET', KEYS[1], 'shadow', value)
    -- The whole fleet is in shadow now: instances that still enforce (forced, or older than
    -- shadow mode) say so again at their next RECORD.
    if value == '1' then redis.call('HDEL', KEYS[1], 'enforcing_until') end
  else
    return redis.error_reply('BREAKER_BAD_VALUE shadow ' .. value)
  end
else
  return redis.error_reply('BREAKER_BAD_OP ' .. op)
end
redis.call('HINCRBY', KEYS[1], 'cgen', 1)
redis.call('PUBLISH', ARGV[4], ARGV[5])
