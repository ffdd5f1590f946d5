-- RAISE_HW: raises `hw` of the fleet's marker to ARGV[1], never lowers it. Every writer of a
-- generation does, so instances that missed its message learn of it and re-sync.
-- Typed call: `RaiseHw` (scripts.rs).
--
-- KEYS[1]  the fleet's marker  <prefix>:fleet  (hash: `inc` incarnation, `hw` high water)
-- ARGV[1]  a generation
-- Reply: 1

local hw = tonumber(redis.call('HGET', KEYS[1], 'hw') or '0') or 0
local g = tonumber(ARGV[1])
if g > hw then redis.call('HSET', KEYS[1], 'hw', g) end
return 1
