-- Redis's clock, in Unix milliseconds: the only clock the scripts read (instances exchange
-- remaining durations, never times). Prepended to every script that needs the time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
