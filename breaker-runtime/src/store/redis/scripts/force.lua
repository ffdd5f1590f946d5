-- FORCE (after clock.lua and prologue.lua): an operator's command, authoritative whatever
-- generation Redis is at: forced OPEN, forced CLOSED, or a reset (back to CLOSED with cleared
-- counts; also clears the swap and marks `reset_gen`, which ends even an instance's own
-- episode). Typed call: `Force` (scripts.rs).
--
-- KEYS[1]  state hash          <prefix>:{name}:s
-- KEYS[2]  window hash         <prefix>:{name}:w
-- KEYS[3]  probe leases        <prefix>:{name}:p
-- KEYS[4]  failing instances   <prefix>:{name}:q  (optional: cleared when given)
-- ARGV[1]  forced: `open`, `closed`, or empty to reset
-- ARGV[2]  events channel      <prefix>:events  (the controls channel is derived from it)
-- ARGV[3]  name
-- ARGV[4]  the highest generation the caller has seen (0 from an operator's tool)
-- Reply: as RECORD's

if seen_gen > gen then gen = seen_gen end
forced = ARGV[1]
if forced == 'open' then
  state = 'open'
elseif forced == 'closed' or forced == '' then
  state, opens, open_until = 'closed', 0, 0
  redis.call('DEL', KEYS[2], KEYS[3])
  if KEYS[4] then redis.call('DEL', KEYS[4]) end
end
if forced == '' and redis.call('HGET', KEYS[1], 'swapped') == '1' then
  redis.call('HSET', KEYS[1], 'swapped', '0')
  -- `cgen` follows Redis's clock (write_control.lua says why).
  local cgen = tonumber(redis.call('HGET', KEYS[1], 'cgen') or '0') or 0
  redis.call('HSET', KEYS[1], 'cgen', math.max(cgen + 1, now))
  local controls = string.gsub(ARGV[2], ':events$', ':controls')
  redis.call('PUBLISH', controls, ARGV[3])
end
save_and_publish(ARGV[2], ARGV[3], nil, (forced == '') and 'reset' or '')
if forced == '' then redis.call('HSET', KEYS[1], 'reset_gen', gen) end
return tail(state, gen, remaining(), forced, opens)
