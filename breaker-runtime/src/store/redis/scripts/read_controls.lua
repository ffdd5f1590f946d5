-- READ_CONTROLS (after clock.lua; also the tail of WRITE_CONTROL): a breaker's controls on
-- Redis's clock. A time left of 0 means "until cleared"; an expired fault or notice reads as
-- none. Typed call: `ReadControls` (scripts.rs).
--
-- KEYS[1]  state hash          <prefix>:{name}:s
-- Reply: {swapped (0/1), fault, fault ms left, notice, notice ms left, cgen, shadow}; shadow is
-- `1`, `0`, or empty when no operator set a mode (each instance keeps its declared one).

local c = redis.call('HMGET', KEYS[1], 'swapped', 'fault', 'fault_until', 'notice', 'notice_until', 'cgen', 'shadow')
local function left(u)
  u = tonumber(u or '0') or 0
  if u == 0 then return 0 end
  if u <= now then return -1 end
  return u - now
end
local fault, fault_left = c[2] or '', left(c[3])
if fault_left < 0 then fault, fault_left = '', 0 end
local notice, notice_left = c[4] or '', left(c[5])
if notice_left < 0 then notice, notice_left = '', 0 end
local shadow = c[7] or ''
if shadow ~= '1' and shadow ~= '0' then shadow = '' end
return {(c[1] == '1') and 1 or 0, fault, fault_left, notice, notice_left, tonumber(c[6] or '0') or 0, shadow}
