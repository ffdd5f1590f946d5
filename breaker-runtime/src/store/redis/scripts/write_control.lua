-- WRITE_CONTROL (after clock.lua, before read_controls.lua): changes one control of a breaker
-- for every instance, moves `cgen` on and publishes the name on the controls channel; the reply
-- is READ_CONTROLS's. Typed call: `WriteControl` (scripts.rs).
--
-- `cgen` follows Redis's clock (the larger of cgen + 1 and now, in ms), so a change made after
-- Redis lost its data reads as newer than any controls an instance saw before the loss; an
-- instance that finds `cgen` behind what it saw knows Redis lost (or rolled back) the controls
-- and restores its view with `restore`, which only writes over an older one.
--
-- KEYS[1]  state hash          <prefix>:{name}:s
-- ARGV[1]  op: `swap`, `fault`, `notice`, `shadow` or `restore`
-- ARGV[2]  value: `swap`: `1`, `0` or `toggle`; `fault`: a fault in its canonical form, empty
--          to clear; `notice`: the text, empty to clear; `shadow`: `1` (shadow), `0`
--          (enforce) or empty (back to each instance's declared mode); `restore`:
--          `<shadow>|<swapped>` as an instance holds them (`1|0`, `|1`...)
-- ARGV[3]  ms until it expires (0: until cleared)
-- ARGV[4]  controls channel    <prefix>:controls
-- ARGV[5]  name
-- ARGV[6]  `restore` only: the cgen the instance saw; written only if Redis's is older, and
--          cgen becomes it (so a view newer still, or a change made since, wins)
-- Reply: as READ_CONTROLS's

local op, value, for_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]) or 0
local until_ms = 0
if for_ms > 0 and value ~= '' then until_ms = now + for_ms end
local function set_shadow(v)
  if v == '' then
    redis.call('HDEL', KEYS[1], 'shadow')
  elseif v == '1' or v == '0' then
    redis.call('HSET', KEYS[1], 'shadow', v)
    -- The whole fleet is in shadow now: instances that still enforce (forced, or older than
    -- shadow mode) say so again at their next RECORD.
    if v == '1' then redis.call('HDEL', KEYS[1], 'enforcing_until') end
  else
    return false
  end
  return true
end
local cgen = tonumber(redis.call('HGET', KEYS[1], 'cgen') or '0') or 0
local next_cgen = math.max(cgen + 1, now)
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
  if not set_shadow(value) then return redis.error_reply('BREAKER_BAD_VALUE shadow ' .. value) end
elseif op == 'restore' then
  local shadow, swapped = string.match(value, '^([01]?)|([01])$')
  local seen = tonumber(ARGV[6] or '')
  if shadow == nil or seen == nil then
    return redis.error_reply('BREAKER_BAD_VALUE restore ' .. value)
  end
  if cgen < seen then
    set_shadow(shadow)
    redis.call('HSET', KEYS[1], 'swapped', swapped)
  end
  next_cgen = seen
else
  return redis.error_reply('BREAKER_BAD_OP ' .. op)
end
if next_cgen > cgen then
  redis.call('HSET', KEYS[1], 'cgen', next_cgen)
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
