-- The prologue of RECORD, FORCE, ACQUIRE and RELEASE (after clock.lua): the breaker's state hash
-- read defensively (data that is not ours is an error, never a crash nor a long loop), the
-- timing helpers, and `save_and_publish`, the one way a script changes the breaker's state.
--
-- KEYS[1] is always the breaker's state hash (`<prefix>:{name}:s`, fields `state gen
-- open_until forced opens alerts a:<gen> cgen reset_gen probe_ok chain_failed bucket_ms`, and
-- the controls `swapped fault fault_until notice notice_until`); KEYS[2] its window, KEYS[3]
-- its probe leases. ARGV[#ARGV] is always the highest generation the caller has seen.
--
-- Defines: int, h, exists, state, gen, open_until, opens, forced, seen_gen, lost,
-- prev_saved, fleet_failures, remaining(), open_for(), clamp(), reopen(), start_half_open(),
-- save_and_publish(), tail().

-- A number field of ours: an integer written in digits (no exponent, inf or nan), at most 16 of
-- them. Anything else is somebody else's data: an error reply, never a long loop.
local function int(v, what)
  if v == false or v == nil then return 0 end
  if type(v) ~= 'string' or #v > 16 or not string.match(v, '^%-?%d+$') then
    error({err = 'BREAKER_MALFORMED ' .. what .. ' field of ' .. KEYS[1]})
  end
  return tonumber(v)
end
local h = redis.call('HMGET', KEYS[1], 'state', 'gen', 'open_until', 'forced', 'opens', 'alerts', 'cgen', 'reset_gen')
local exists = h[1] ~= false
local state = h[1] or 'closed'
if state ~= 'closed' and state ~= 'open' and state ~= 'half_open' then
  return redis.error_reply('BREAKER_MALFORMED state field of ' .. KEYS[1])
end
local gen, open_until, opens = int(h[2], 'gen'), int(h[3], 'open_until'), int(h[5], 'opens')
local forced = h[4] or ''
if forced ~= '' and forced ~= 'open' and forced ~= 'closed' then
  return redis.error_reply('BREAKER_MALFORMED forced field of ' .. KEYS[1])
end
-- Every script's last argument is the highest generation the instance has seen (0 from an
-- operator's tool). Redis behind it lost data: restarted empty or from an older snapshot,
-- failed over to a replica that was behind, or flushed.
local seen_gen = tonumber(ARGV[#ARGV]) or 0
local lost = seen_gen > gen
-- Whoever makes a transition, its alert is sent by the one instance that claims it (CLAIM).
local prev_saved, fleet_failures = state, 0
local function remaining()
  if state == 'open' and open_until > now then return open_until - now end
  return 0
end
local function open_for(open_ms, max_open_ms, n)
  local d = open_ms
  for _ = 2, math.min(n, 64) do d = math.min(d * 2, max_open_ms) end
  return math.min(d, max_open_ms)
end
-- An OPEN further away than this opening can last is clamped, not trusted (a clock that
-- jumped back, a restored snapshot, somebody else's data).
local function clamp(open_ms, max_open_ms)
  local longest = open_for(open_ms, max_open_ms, math.max(opens, 1))
  if state == 'open' and open_until > now + longest then
    open_until = now + longest
    redis.call('HSET', KEYS[1], 'open_until', open_until)
  end
end
local function reopen(open_ms, max_open_ms)
  state, opens = 'open', math.min(opens + 1, 64)
  open_until = now + open_for(open_ms, max_open_ms, opens)
  redis.call('DEL', KEYS[3])
end
local function start_half_open()
  state = 'half_open'
  redis.call('HSET', KEYS[1], 'probe_ok', 0)
  redis.call('DEL', KEYS[3])
end
-- A transition from CLOSED to OPEN is `opened`, one to CLOSED from elsewhere `recovered`: the
-- fleet's alerts, queued here (`alerts`: their generations, oldest first, at most 32; `a:<gen>`:
-- `kind|from|failures|claimed until|claimer`) and sent by the one instance whose CLAIM holds
-- it, until it reports it DELIVERED (a claim whose lease ran out is taken over by another
-- instance). Two transitions before anyone claims are both alerted, in order. `kind`
-- overrides that: 'quiet' for no alert, 'store_reset' for a state written back. `op` is
-- 'reset' for an operator's reset (it ends even an instance's own episode). Generations follow
-- Redis's clock (and always grow), so a change made after Redis went back in time still reads
-- as news to every instance. The message published is `name|state|gen|remaining ms|forced|
-- opens|alert|op` (see `Message` in protocol.rs).
--
-- Whether the script wrote alerts, controls or a reset (the tail then reads them again).
local wrote = false
local function save_and_publish(channel, name, kind, op)
  wrote = true
  gen = math.max(gen + 1, now)
  local before = prev_saved
  if kind == 'quiet' then
    kind = ''
  elseif kind == nil or kind == '' then
    kind = ''
    if prev_saved == 'closed' and state == 'open' then
      kind = 'opened'
    elseif prev_saved ~= 'closed' and state == 'closed' then
      kind = 'recovered'
    end
  end
  prev_saved = state
  if kind ~= '' then
    local list = redis.call('HGET', KEYS[1], 'alerts') or ''
    local n = 0
    for _ in string.gmatch(list, '%d+') do n = n + 1 end
    if n >= 32 then
      -- Bounded: the oldest alert nobody delivered gives way.
      local oldest = string.match(list, '^(%d+)')
      redis.call('HDEL', KEYS[1], 'a:' .. oldest)
      list = string.gsub(list, '^%d+,?', '')
    end
    if list == '' then list = tostring(gen) else list = list .. ',' .. gen end
    redis.call('HSET', KEYS[1], 'alerts', list, 'a:' .. gen, kind .. '|' .. before .. '|' .. fleet_failures .. '||')
  end
  if state == 'closed' then redis.call('HDEL', KEYS[1], 'chain_failed') end
  redis.call('HSET', KEYS[1], 'state', state, 'gen', gen, 'open_until', open_until, 'forced', forced, 'opens', opens)
  redis.call('PUBLISH', channel, name .. '|' .. state .. '|' .. gen .. '|' .. remaining() .. '|' .. forced .. '|' .. opens .. '|' .. kind .. '|' .. (op or ''))
end
-- What every reply ends with: the generation of the oldest alert nobody holds a claim on (0
-- for none: the instance claims it, so a lost reply, a crashed writer or a crashed sender
-- loses no alert), the control generation (the instance re-reads its controls when it
-- changed), and the generation of the last operator reset (it ends an instance's own
-- episode even when the reset's message was lost).
local function tail(...)
  local r = {...}
  local a = {h[6], h[7], h[8]}
  if wrote then a = redis.call('HMGET', KEYS[1], 'alerts', 'cgen', 'reset_gen') end
  local pending = 0
  if a[1] and a[1] ~= '' then
    for g in string.gmatch(a[1], '%d+') do
      local rec = redis.call('HGET', KEYS[1], 'a:' .. g)
      local till = rec and tonumber(string.match(rec, '^[^|]*|[^|]*|[^|]*|(%d+)|')) or 0
      if rec and till <= now then
        pending = tonumber(g)
        break
      end
    end
  end
  r[#r + 1] = pending
  r[#r + 1] = int(a[2], 'cgen')
  r[#r + 1] = int(a[3], 'reset_gen')
  return r
end
