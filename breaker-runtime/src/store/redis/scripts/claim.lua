-- CLAIM (after clock.lua): `claim` takes the alert of the transition to ARGV[1] and every
-- younger alert nobody holds, for a lease on Redis's clock, so one instance sends them in their
-- order; `renew` extends this instance's claim of ARGV[1]. Typed call: `Claim` (scripts.rs).
--
-- KEYS[1]  state hash          <prefix>:{name}:s  (`alerts`, `a:<gen>`:
--                              `kind|from|failures|claimed until|claimer`)
-- ARGV[1]  gen of the alert
-- ARGV[2]  instance id
-- ARGV[3]  lease ms
-- ARGV[4]  mode: `claim` or `renew`
-- Reply: {{gen, kind, from, failures, enforcing}, ...}: empty when the alert is sent, or held
-- by a live claim of another instance (`claim`), or no longer this instance's (`renew`);
-- enforcing is 1 while an instance that acts on calls (not in shadow mode) recorded lately
-- (`enforcing_until`, RECORD), else 0

local lease, me, renew = tonumber(ARGV[3]), ARGV[2], ARGV[4] == 'renew'
local enforcing = (tonumber(redis.call('HGET', KEYS[1], 'enforcing_until') or '0') or 0) > now and 1 or 0
local function take(g)
  local field = 'a:' .. g
  local rec = redis.call('HGET', KEYS[1], field)
  if not rec then return nil end
  local kind, from, failures, till, claimer = string.match(rec, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if kind == nil then
    -- Not ours to read: dropped rather than claimed forever.
    redis.call('HDEL', KEYS[1], field)
    return nil
  end
  local held = (tonumber(till) or 0) > now
  if (renew and (not held or claimer ~= me)) or (not renew and held) then return nil end
  redis.call('HSET', KEYS[1], field, kind .. '|' .. from .. '|' .. failures .. '|' .. (now + lease) .. '|' .. me)
  return {tonumber(g), kind, from, tonumber(failures) or 0, enforcing}
end
local first = take(ARGV[1])
if first == nil then return {} end
local out = {first}
if not renew then
  local list = redis.call('HGET', KEYS[1], 'alerts') or ''
  local after = false
  for g in string.gmatch(list, '%d+') do
    if after then
      local a = take(g)
      if a then out[#out + 1] = a end
    elseif g == ARGV[1] then
      after = true
    end
  end
end
return out
