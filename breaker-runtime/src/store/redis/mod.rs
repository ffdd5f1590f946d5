//! `store = "redis"`: one breaker state for every instance, without a Redis round trip per call.
//!
//! Calls never touch Redis: they are decided by the local machine from atomics, as with the
//! memory store. A background thread (`breaker-redis`, with a current-thread tokio runtime of its
//! own, so it runs whatever the application's runtime is doing) keeps the local machines and
//! Redis in step:
//!
//! - **Flush.** Every 50 ms, and at once after a failure or a local verdict, each breaker's new
//!   successes and failures since the last flush go to Redis in one `RECORD` script, one request
//!   in flight at a time. The script adds them to the fleet's window, decides the trip from the
//!   fleet-wide counts with Redis's clock, and replies with the authoritative state, which the
//!   instance adopts: a lost message heals within one flush.
//! - **Push.** Every change of state is published on `<prefix>:events`; each instance applies it
//!   on receipt.
//! - **Time.** Only Redis's clock is used in Redis; instances exchange remaining durations.
//! - **Generations** only go forward: an instance ignores fleet news older than what it has seen,
//!   and a Redis that comes back empty is told the generation (and an OPEN state) back.
//! - **Redis down or slow** costs calls nothing: the local machine goes on deciding with the
//!   same thresholds, the store reports the switch to local mode (and back) as an event, and
//!   reconnects on its own.
//!
//! Keys, per breaker, share the hash tag `{name}` so a breaker's scripts are single-slot:
//! `<prefix>:{name}:s` (hash: `state gen open_until forced opens`) and `<prefix>:{name}:w` (hash:
//! the fleet window, in eighths of `window`).
//!
//! - **HALF_OPEN across the fleet**: at most `half_open_probes` probes in flight over all
//!   instances, as leases in `<prefix>:{name}:p` (a sorted set scored by expiry). A call that
//!   finds HALF_OPEN without a lease here is rejected (served by its fallback) and the store asks
//!   for one at once; the next call probes. A lease that runs out (its holder crashed or hung) is
//!   a failed probe and its late report is ignored. While Redis is down, probing is local.
//!
//! - **Redis Cluster** (`BREAKER_REDIS_CLUSTER`): a breaker's keys share the hash tag `{name}`,
//!   so its scripts are single-slot; classic `PUBLISH` reaches every node's subscribers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisFuture, Script, Value};
use tokio::sync::Notify;

use crate::breaker::Breaker;
use crate::core::config::{ConfigError, StoreKind};
use crate::core::fault::Fault;
use crate::core::machine::{FleetState, Forced, State};
use crate::notify::AlertKind;
use crate::notify::{self as notifier, EventKind};
use crate::store::{Command, Control, Store, StoreError, StoreFuture};

/// `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS, with the `tls` feature): the
/// Redis every instance shares.
pub const ENV_REDIS_URL: &str = "BREAKER_REDIS_URL";
/// Prefix of every key and channel (default `breaker`).
pub const ENV_KEY_PREFIX: &str = "BREAKER_KEY_PREFIX";
/// Comma-separated node URLs of a Redis Cluster (`redis://h1:7000,redis://h2:7001`); used
/// instead of [`ENV_REDIS_URL`] when set.
pub const ENV_REDIS_CLUSTER: &str = "BREAKER_REDIS_CLUSTER";

/// One Redis, or a Redis Cluster.
enum Backend {
    Single(Box<Client>),
    Cluster(Vec<String>),
}

/// A connection to one Redis or to a cluster (also used by `breakerctl`, through
/// `__private`).
#[derive(Clone)]
pub enum Conn {
    /// One Redis.
    Single(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The sync loop wakes at once for a failure, a verdict or fleet work, and at least this often
/// otherwise (an idle instance's loop asks Redis nothing).
const TICK: Duration = Duration::from_millis(50);
/// Successes alone are sent this often at most (failures at once, with the successes counted
/// so far): the count rule trips on failures alone, and the window's calls are for operators.
const SUCCESS_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// With the rate rule, successes and failures alike go every tick: one instance's failures
/// reaching the window before the others' successes would make a rate that is not the fleet's
/// (a sick instance opening a healthy fleet).
const RATE_FLUSH_EVERY: Duration = TICK;
/// The sync loop's tick while no breaker has counts to send and no alert is being delivered.
const IDLE_TICK: Duration = Duration::from_millis(500);
/// Connecting, and waiting for a reply to the store's own work (flushes, housekeeping): a
/// slow link (a reply in 600 ms) is slow, not down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// A call that finds HALF_OPEN waits for the fleet's answer to its request for a probe lease
/// three round trips (as the last flushes measured them), at least this and at most
/// [`RESPONSE_TIMEOUT`]; then it is served as rejected, and a later call asks again.
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(250);
/// How long starting the store waits for a first connection.
const START_WAIT: Duration = Duration::from_millis(300);
/// How often an instance checks the fleet's marker (`<prefix>:fleet`: an incarnation id and the
/// highest generation written) to learn that Redis lost data: one cheap `HMGET`, whatever the
/// number of breakers.
const FLEET_CHECK_EVERY: Duration = Duration::from_secs(2);
const RECONNECT_EVERY: Duration = Duration::from_millis(250);
/// The fleet lease outlives the local one by this much, so a probe that ends just in time can
/// still report before Redis counts it as expired.
const LEASE_SLACK: Duration = Duration::from_secs(1);
/// How long a new breaker waits for the fleet's state before its first call is decided.
const FIRST_SYNC_BUDGET: Duration = Duration::from_millis(300);
/// A breaker with nothing to send still exchanges a `RECORD` every this (it keeps the instance
/// listed for `breakerctl`, and learns of an alert whose claimant died)...
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);
/// ...but an instance sends at most one such heartbeat per this, round robin, whatever its
/// number of breakers: an idle instance costs Redis a quarter of a script a second at most
/// (about one command a second inside it) and half an `HMGET` a second
/// ([`FLEET_CHECK_EVERY`]).
const HEARTBEAT_SPACING: Duration = Duration::from_secs(4);
/// Default of [`ENV_STORE_DOWN_AFTER`].
pub const DEFAULT_STORE_DOWN_AFTER: Duration = Duration::from_secs(1);
/// How long Redis must keep failing (every request and reconnection) before the store counts
/// it as down: breakers then judge probes locally and one `StoreHealth` event is raised (one
/// more when it is back). A stall shorter than this is slowness, not an outage. A duration
/// (`"1s"`, `"500ms"`); default 1 s.
pub const ENV_STORE_DOWN_AFTER: &str = "BREAKER_STORE_DOWN_AFTER";

/// Shared by `RECORD`, `FORCE`, `ACQUIRE` and `RELEASE`: the server's time, the breaker's hash
/// read defensively (data that is not ours is an error, never a crash nor a long loop), and
/// publishing.
const PROLOGUE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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
-- overrides that: 'quiet' for
-- no alert, 'store_reset' for a state written back. `op` is 'reset' for an operator's reset
-- (it ends even an instance's own episode). Generations follow Redis's clock (and always
-- grow), so a change made after Redis went back in time still reads as news to every instance.
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
"#;

/// KEYS: state hash, window hash, probes, failing instances (hash: instance → bucket of its
/// last failure), instances (sorted set). ARGV: successes, failures, bucket ms, threshold, rate
/// percent (0 off), min calls, open ms, max open ms, channel, name, then the fleet's state as
/// this instance last saw it (remaining open ms, opens, state), its forced state (`open`,
/// `closed`, empty), instance id, quorum, ms after which a silent instance is forgotten, last
/// seen gen.
const RECORD: &str = r#"
local succ, fail = tonumber(ARGV[1]), tonumber(ARGV[2])
local bucket_ms, threshold, rate = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local min_calls, open_ms, max_open_ms = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local channel, name = ARGV[9], ARGV[10]
local view_remaining, view_opens, view_state = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local local_forced, instance, quorum, forget_ms = ARGV[14], ARGV[15], tonumber(ARGV[16]), tonumber(ARGV[17])
-- Counts from an instance that has not seen the last operator reset were counted before it.
if seen_gen < int(h[8], 'reset_gen') then
  succ, fail = 0, 0
end
redis.call('ZADD', KEYS[5], now, instance)
-- Forgetting silent instances is needed now and then, not at every record.
if now % 4 == 0 then redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - forget_ms) end
redis.call('PEXPIRE', KEYS[5], forget_ms * 2)
if lost then
  -- Redis lost the breaker, or went back in time: the fleet's state as this instance last saw
  -- it is written back (a forced state only by instances that saw it; never a trip of this
  -- instance's own), and generations go on from what it saw.
  gen = seen_gen
  forced = local_forced
  opens = math.min(math.max(view_opens, 0), 64)
  open_until = 0
  if forced == 'open' then
    state = 'open'
  elseif forced == 'closed' then
    state = 'closed'
  elseif view_state == 'open' and view_remaining > 0 then
    state, opens = 'open', math.max(opens, 1)
    open_until = now + math.min(view_remaining, max_open_ms)
  elseif view_state == 'open' or view_state == 'half_open' then
    opens = math.max(opens, 1)
    start_half_open()
  else
    state, opens = 'closed', 0
  end
  redis.call('DEL', KEYS[3], KEYS[4])
  save_and_publish(channel, name, 'store_reset')
end
clamp(open_ms, max_open_ms)
if forced == '' then
  if state == 'open' and now >= open_until then
    start_half_open()
    save_and_publish(channel, name)
  end
  if state == 'half_open' and redis.call('ZCOUNT', KEYS[3], '-inf', now) > 0 then
    -- A probe lease ran out (its holder crashed or hung): a failed probe.
    reopen(open_ms, max_open_ms)
    save_and_publish(channel, name)
  end
  if state == 'closed' and succ + fail > 0 then
    local bucket = math.floor(now / bucket_ms)
    -- For operators' tools, which read the window without knowing its length.
    redis.call('HSET', KEYS[1], 'bucket_ms', bucket_ms)
    if fail > 0 then
      redis.call('HINCRBY', KEYS[2], bucket .. ':f', fail)
      redis.call('HSET', KEYS[4], instance, bucket)
      redis.call('PEXPIRE', KEYS[4], bucket_ms * 9)
    end
    redis.call('HINCRBY', KEYS[2], bucket .. ':t', succ + fail)
    redis.call('PEXPIRE', KEYS[2], bucket_ms * 9)
    local f, tot = 0, 0
    local w = redis.call('HGETALL', KEYS[2])
    for i = 1, #w, 2 do
      local b, kind = string.match(w[i], '^(%d+):(%a)$')
      b = tonumber(b)
      local n = tonumber(w[i + 1]) or 0
      -- Buckets that slid out, and buckets from the future (a clock that jumped back).
      if b == nil or b <= bucket - 8 or b > bucket or n ~= n or n < 0 or n > 1e15 then
        redis.call('HDEL', KEYS[2], w[i])
      elseif kind == 'f' then f = f + n
      else tot = tot + n end
    end
    if f >= threshold or (rate > 0 and tot >= min_calls and f * 100 >= rate * tot) then
      -- The quorum: failures from at least `quorum` distinct instances in the window.
      local voters = 0
      local q = redis.call('HGETALL', KEYS[4])
      for i = 1, #q, 2 do
        local b = tonumber(q[i + 1])
        if b == nil or b <= bucket - 8 or b > bucket then
          redis.call('HDEL', KEYS[4], q[i])
        else
          voters = voters + 1
        end
      end
      if voters >= quorum then
        fleet_failures = f
        state, opens = 'open', 1
        open_until = now + open_for(open_ms, max_open_ms, 1)
        redis.call('DEL', KEYS[2], KEYS[4])
        save_and_publish(channel, name)
      end
    end
  end
end
return tail(state, gen, remaining(), forced, opens)
"#;

/// KEYS: state hash, window hash, probes, failing instances (optional). ARGV: forced (`open`,
/// `closed`, or empty to reset), channel, name, last seen gen. A reset also clears the swap.
/// An operator's command is authoritative: it applies whatever generation Redis is at.
const FORCE: &str = r#"
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
  redis.call('HINCRBY', KEYS[1], 'cgen', 1)
  local controls = string.gsub(ARGV[2], ':events$', ':controls')
  redis.call('PUBLISH', controls, ARGV[3])
end
save_and_publish(ARGV[2], ARGV[3], nil, (forced == '') and 'reset' or '')
if forced == '' then redis.call('HSET', KEYS[1], 'reset_gen', gen) end
return tail(state, gen, remaining(), forced, opens)
"#;

/// KEYS: state, window, probes. ARGV: probe limit, lease ms, token, channel, name, open ms,
/// max open ms, last seen gen. Grants a HALF_OPEN probe lease if fewer than `limit` are out
/// (counting probes that already succeeded in this episode). A lease that ran out is a failed
/// probe. Replies `{granted, ms until a slot may free, state...}`. A Redis behind the
/// instance grants nothing (the instance's next `RECORD` writes the fleet's state back).
const ACQUIRE: &str = r#"
local limit, lease_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local channel, name = ARGV[4], ARGV[5]
local open_ms, max_open_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
local function reply(granted, wait) return tail(granted, wait, state, gen, remaining(), forced, opens) end
if lost then return reply(0, 0) end
if forced ~= '' then return reply(0, 0) end
clamp(open_ms, max_open_ms)
if state == 'open' and now >= open_until then
  start_half_open()
  save_and_publish(channel, name)
end
if state ~= 'half_open' then return reply(0, remaining()) end
-- A lease that ends further away than a lease lasts (the clock jumped back) is taken to end
-- a lease from now: held, not lost.
local future = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. (now + lease_ms), '+inf')
for _, member in ipairs(future) do
  redis.call('ZADD', KEYS[3], now + lease_ms, member)
end
if redis.call('ZCOUNT', KEYS[3], '-inf', now) > 0 then
  reopen(open_ms, max_open_ms)
  save_and_publish(channel, name)
  return reply(0, remaining())
end
local ok = int(redis.call('HGET', KEYS[1], 'probe_ok'), 'probe_ok')
if redis.call('ZCARD', KEYS[3]) + ok >= limit then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  local wait = 0
  if first[2] then wait = math.max(tonumber(first[2]) - now, 0) end
  return reply(0, wait)
end
redis.call('ZADD', KEYS[3], now + lease_ms, token)
redis.call('PEXPIRE', KEYS[3], lease_ms * 2 + 1000)
return reply(1, 0)
"#;

/// KEYS: state, window, probes, failing instances. ARGV: token, outcome (1 succeeded, 0
/// failed, 2 abandoned), probe limit, channel, name, open ms, max open ms, last seen gen. A lease
/// that is no longer held (it ran out, or belongs to an earlier episode) is ignored. A lease
/// given back unused is announced (same state, a new generation), so instances that were
/// told the slots are taken ask again.
const RELEASE: &str = r#"
local token, outcome, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local channel, name = ARGV[4], ARGV[5]
local open_ms, max_open_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
local function reply(held) return tail(held, 0, state, gen, remaining(), forced, opens) end
if lost then return reply(0) end
if redis.call('ZREM', KEYS[3], token) == 0 then return reply(0) end
if forced ~= '' or state ~= 'half_open' then return reply(1) end
if outcome == 1 then
  local ok = redis.call('HINCRBY', KEYS[1], 'probe_ok', 1)
  if ok >= limit then
    state, opens = 'closed', 0
    redis.call('HSET', KEYS[1], 'probe_ok', 0)
    redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
    save_and_publish(channel, name)
  end
elseif outcome == 0 then
  reopen(open_ms, max_open_ms)
  save_and_publish(channel, name)
else
  save_and_publish(channel, name)
end
return reply(1)
"#;

/// KEYS: state hash. ARGV: gen, instance, lease ms, mode. `claim`: claims the alert of the
/// transition to `gen` and every younger alert nobody holds, for `lease ms` (Redis clock), so
/// one instance sends them in their order; replies `{gen, kind, from, failures}` for each
/// (empty when `gen` is sent, or held by a live claim of another instance). `renew`: extends
/// this instance's claim of `gen` (an empty reply when it lost it).
pub(crate) const CLAIM: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, me, renew = tonumber(ARGV[3]), ARGV[2], ARGV[4] == 'renew'
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
  return {tonumber(g), kind, from, tonumber(failures) or 0}
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
"#;

/// KEYS: state hash. ARGV: gen. The alert of the transition to `gen` was delivered: it leaves
/// the queue.
const DELIVERED: &str = r#"
redis.call('HDEL', KEYS[1], 'a:' .. ARGV[1])
local list = redis.call('HGET', KEYS[1], 'alerts') or ''
local rest = {}
for g in string.gmatch(list, '%d+') do
  if g ~= ARGV[1] then rest[#rest + 1] = g end
end
redis.call('HSET', KEYS[1], 'alerts', table.concat(rest, ','))
return 1
"#;

/// How long a claimed alert is the claimer's to deliver; the claimer renews it every
/// [`ALERT_RENEW`] while its notifiers are still at it (the HTTP notifiers retry for up to
/// about 40 s). A claimer that died is replaced when the lease runs out.
const ALERT_LEASE: Duration = Duration::from_secs(15);
const ALERT_RENEW: Duration = Duration::from_secs(5);

/// Reads a breaker's controls with Redis's clock. KEYS: state hash. Replies `{swapped (0/1),
/// fault, fault ms left, notice, notice ms left, cgen}`; a time left of 0 means "until cleared",
/// and an expired fault or notice reads as none.
pub(crate) const READ_CONTROLS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local c = redis.call('HMGET', KEYS[1], 'swapped', 'fault', 'fault_until', 'notice', 'notice_until', 'cgen')
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
return {(c[1] == '1') and 1 or 0, fault, fault_left, notice, notice_left, tonumber(c[6] or '0') or 0}
"#;

/// Changes one control of a breaker, for every instance. KEYS: state hash. ARGV: op (`swap`,
/// `fault`, `notice`), value (`swap`: `1`, `0` or `toggle`; `fault`: a fault in its canonical
/// form or empty to clear; `notice`: the text or empty), ms until it expires (0: until
/// cleared), controls channel, name. Bumps `cgen`, publishes the name on the controls channel,
/// and replies as [`READ_CONTROLS`].
pub(crate) const WRITE_CONTROL: &str = r#"
local t0 = redis.call('TIME')
local now0 = tonumber(t0[1]) * 1000 + math.floor(tonumber(t0[2]) / 1000)
local op, value, for_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]) or 0
local until_ms = 0
if for_ms > 0 and value ~= '' then until_ms = now0 + for_ms end
if op == 'swap' then
  if value == 'toggle' then
    value = (redis.call('HGET', KEYS[1], 'swapped') == '1') and '0' or '1'
  end
  redis.call('HSET', KEYS[1], 'swapped', value)
elseif op == 'fault' then
  redis.call('HSET', KEYS[1], 'fault', value, 'fault_until', until_ms)
elseif op == 'notice' then
  redis.call('HSET', KEYS[1], 'notice', value, 'notice_until', until_ms)
else
  return redis.error_reply('BREAKER_BAD_OP ' .. op)
end
redis.call('HINCRBY', KEYS[1], 'cgen', 1)
redis.call('PUBLISH', ARGV[4], ARGV[5])
"#;

/// `FORCE`, whole: KEYS state, window, probes; ARGV forced (`open`, `closed`, empty to reset),
/// events channel, name, last seen generation (`0` from an operator's tool).
#[must_use]
pub fn force_script() -> String {
    format!("{PROLOGUE}{FORCE}")
}

/// `WRITE_CONTROL`, whole: see its constant.
#[must_use]
pub fn write_control_script() -> String {
    format!("{WRITE_CONTROL}{READ_CONTROLS}")
}

/// Raises `hw` of the fleet's marker (`<prefix>:fleet`) to `ARGV[1]`: every writer of a
/// generation does, so instances that missed its message re-sync.
#[must_use]
pub fn raise_hw_script() -> &'static str {
    RAISE_HW
}

/// `READ_CONTROLS`, whole.
#[must_use]
pub fn read_controls_script() -> String {
    READ_CONTROLS.to_owned()
}

/// A breaker attached to the store, with what has been sent of its counters.
struct Entry {
    handle: &'static Breaker,
    sent_successes: u64,
    sent_failures: u64,
    synced: Arc<AtomicBool>,
    /// Redis refused this breaker's data on the last flush (reported once, not every flush).
    refused: bool,
    /// The control generation last read (`None`: never).
    cgen: Option<u64>,
    /// A control message arrived: read the controls at the next flush.
    controls_stale: bool,
    /// Generations of alert-worthy transitions to claim (the claim is atomic: one sender).
    claims: Vec<u64>,
    /// This instance set the fleet's `chain_failed` flag (cleared when the chain works again).
    chain_flagged: bool,
    /// Exchange a `RECORD` at the next flush even with nothing to send: the breaker is new, the
    /// connection or subscription was re-made, or Redis looked behind what the instance saw.
    needs_sync: bool,
    /// When this breaker last exchanged a `RECORD` (for the idle heartbeat).
    last_record: std::time::Instant,
    /// `<prefix>:breakers` lists it since the last (re)connection.
    listed: bool,
    /// Since when this breaker's requests fail while others' are answered.
    failing_since: Option<std::time::Instant>,
    /// The last operator reset applied (its generation; `None` before the first reply).
    reset_seen: Option<u64>,
}

struct Inner {
    prefix: String,
    channel: String,
    backend: Backend,
    entries: Mutex<HashMap<&'static str, Entry>>,
    wake: Notify,
    healthy: AtomicBool,
    /// Whether the store has reported its health yet (so a Redis down at start is reported).
    health_known: AtomicBool,
    /// Since when every request and reconnection failed (`None`: the last one succeeded).
    failing_since: Mutex<Option<std::time::Instant>>,
    /// [`ENV_STORE_DOWN_AFTER`], in milliseconds.
    down_after_ms: AtomicU64,
    /// The sync loop's connection while it is up, shared with the probe-lease requests.
    conn: Mutex<Option<Conn>>,
    /// Wakes the task that asks the fleet for probe leases.
    acquire_wake: Notify,
    /// No idle heartbeat is sent before this (one per [`HEARTBEAT_SPACING`]).
    next_heartbeat: Mutex<std::time::Instant>,
    /// The fleet marker's check (see [`fleet_marker`]): when next, the incarnation last read,
    /// the highest generation seen, and whether a reply raised it (to write as `hw`).
    next_fleet_check: Mutex<std::time::Instant>,
    fleet_inc: Mutex<Option<String>>,
    max_seen: AtomicU64,
    checked_seen: AtomicU64,
    hw_dirty: AtomicBool,
    raise_hw: Script,
    /// Fleet alerts this instance claimed and raised, until every notifier is done with them.
    /// With when its claim was last renewed.
    receipts: Mutex<Vec<(&'static str, u64, notifier::Receipt, std::time::Instant)>>,
    delivered: Script,
    /// The round trip of `RECORD`, averaged, in microseconds (0: none yet).
    rtt_us: AtomicU64,
    rt: tokio::runtime::Handle,
    record: Script,
    force: Script,
    acquire: Script,
    release: Script,
    claim: Script,
    read_controls: Script,
    write_control: Script,
    controls_channel: String,
    /// `host:pid:nonce`, in `<prefix>:{name}:i`.
    instance: String,
    /// Random per process: lease tokens must differ across hosts (every container's pid is 1).
    nonce: String,
    tokens: AtomicU64,
}

/// The Redis store. Build it with [`RedisStore::connect`] (or set [`ENV_REDIS_URL`]) and install
/// it with [`crate::RuntimeBuilder::redis_store`].
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("healthy", &self.inner.healthy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Starts the store's background thread for the Redis at `url`, with keys under `prefix`.
    /// Waits up to 250 ms for a first connection; a Redis that is down is not an error (calls
    /// run locally until it is back).
    ///
    /// # Errors
    /// A malformed URL or prefix, or a thread that cannot be started.
    pub fn connect(url: &str, prefix: &str) -> Result<RedisStore, ConfigError> {
        if url.starts_with("rediss://") && cfg!(not(feature = "tls")) {
            return Err(ConfigError::new(
                ENV_REDIS_URL,
                "is a `rediss://` (TLS) URL: enable the `tls` feature of `breaker-runtime`",
            ));
        }
        let client = Client::open(url).map_err(|e| {
            ConfigError::new(
                ENV_REDIS_URL,
                format!("is not a Redis URL: {}", redact(&e.to_string())),
            )
        })?;
        Self::start(Backend::Single(Box::new(client)), prefix)
    }

    /// As [`RedisStore::connect`], for a Redis Cluster given by some of its nodes' URLs.
    ///
    /// # Errors
    /// A malformed URL or prefix, or a thread that cannot be started.
    pub fn connect_cluster(urls: &[&str], prefix: &str) -> Result<RedisStore, ConfigError> {
        if urls.is_empty() {
            return Err(ConfigError::new(ENV_REDIS_CLUSTER, "lists no node"));
        }
        ClusterClient::new(urls.to_vec()).map_err(|e| {
            ConfigError::new(
                ENV_REDIS_CLUSTER,
                format!("is not a list of Redis URLs: {}", redact(&e.to_string())),
            )
        })?;
        Self::start(
            Backend::Cluster(urls.iter().map(|u| (*u).to_owned()).collect()),
            prefix,
        )
    }

    fn start(backend: Backend, prefix: &str) -> Result<RedisStore, ConfigError> {
        if prefix.is_empty() || prefix.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                ENV_KEY_PREFIX,
                "must be non-empty and without spaces",
            ));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("breaker-redis".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => {
                        let _ = tx.send(Ok(rt.handle().clone()));
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| ConfigError::new("redis", format!("cannot start its thread: {e}")))?;
        let rt = rx
            .recv()
            .map_err(|e| ConfigError::new("redis", e.to_string()))?
            .map_err(|e| ConfigError::new("redis", format!("cannot start its runtime: {e}")))?;
        let nonce = process_nonce();
        let inner = Arc::new(Inner {
            prefix: prefix.to_owned(),
            channel: format!("{prefix}:events"),
            backend,
            entries: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            healthy: AtomicBool::new(false),
            health_known: AtomicBool::new(false),
            failing_since: Mutex::new(None),
            down_after_ms: AtomicU64::new(
                u64::try_from(DEFAULT_STORE_DOWN_AFTER.as_millis()).unwrap_or(u64::MAX),
            ),
            conn: Mutex::new(None),
            acquire_wake: Notify::new(),
            next_heartbeat: Mutex::new(std::time::Instant::now()),
            next_fleet_check: Mutex::new(std::time::Instant::now()),
            fleet_inc: Mutex::new(None),
            max_seen: AtomicU64::new(0),
            checked_seen: AtomicU64::new(0),
            hw_dirty: AtomicBool::new(false),
            raise_hw: Script::new(RAISE_HW),
            receipts: Mutex::new(Vec::new()),
            delivered: Script::new(DELIVERED),
            rtt_us: AtomicU64::new(0),
            rt,
            record: Script::new(&format!("{PROLOGUE}{RECORD}")),
            force: Script::new(&format!("{PROLOGUE}{FORCE}")),
            acquire: Script::new(&format!("{PROLOGUE}{ACQUIRE}")),
            release: Script::new(&format!("{PROLOGUE}{RELEASE}")),
            claim: Script::new(CLAIM),
            read_controls: Script::new(READ_CONTROLS),
            write_control: Script::new(&write_control_script()),
            controls_channel: format!("{prefix}:controls"),
            instance: format!("{}:{}:{}", hostname(), std::process::id(), &nonce[..8]),
            nonce,
            tokens: AtomicU64::new(0),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        inner.rt.spawn(sync_loop(inner.clone(), ready_tx));
        inner.rt.spawn(subscribe_loop(inner.clone()));
        inner.rt.spawn(acquire_loop(inner.clone()));
        let _ = ready_rx.recv_timeout(START_WAIT);
        Ok(RedisStore { inner })
    }

    /// How long Redis must keep failing before the store counts it as down (see
    /// [`ENV_STORE_DOWN_AFTER`]; default [`DEFAULT_STORE_DOWN_AFTER`]).
    pub fn set_store_down_after(&self, after: Duration) {
        self.inner.down_after_ms.store(
            u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
    }

    /// Whether the last exchange with Redis succeeded.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Acquire)
    }
}

impl Inner {
    /// State hash, window hash, probe leases, failing instances, instances.
    fn keys(&self, name: &str) -> [String; 5] {
        ["s", "w", "p", "q", "i"].map(|k| format!("{}:{{{name}}}:{k}", self.prefix))
    }

    /// A request or reconnection failed: Redis is down once that has gone on for the
    /// configured time; before that it is slow, and nothing changes for the breakers.
    /// `started`: when the request that failed was sent (a timeout is a failure from then on).
    fn note_failure(&self, detail: &str, started: std::time::Instant) {
        let now = std::time::Instant::now();
        let since = *lock(&self.failing_since).get_or_insert(started);
        let after = Duration::from_millis(self.down_after_ms.load(Ordering::Acquire));
        if now.duration_since(since) >= after {
            self.set_healthy(false, detail);
        }
    }

    fn note_success(&self) {
        *lock(&self.failing_since) = None;
        self.set_healthy(true, "");
    }

    /// Whether any breaker has counts not sent yet, or an alert is being delivered; always
    /// with a rate-rule breaker (its successes must reach the window as promptly as another
    /// instance's failures, which wake the loop at once).
    fn busy(&self) -> bool {
        if !lock(&self.receipts).is_empty() {
            return true;
        }
        lock(&self.entries).values().any(|e| {
            let c = e.handle.counters();
            e.handle.config().failure_rate.is_some()
                || c.successes != e.sent_successes
                || c.failures != e.sent_failures
                || e.needs_sync
        })
    }

    /// Every breaker exchanges a `RECORD` at the next flush (news may have been missed).
    fn resync_all(&self) {
        for e in lock(&self.entries).values_mut() {
            e.needs_sync = true;
        }
        self.wake.notify_one();
    }

    fn set_healthy(&self, healthy: bool, detail: &str) {
        let changed = self.healthy.swap(healthy, Ordering::AcqRel) != healthy;
        let first = !self.health_known.swap(true, Ordering::AcqRel);
        if changed || first {
            // Probes are judged by the fleet while Redis answers, locally while it does not.
            for e in lock(&self.entries).values() {
                e.handle.set_fleet_gate(healthy);
            }
            if first && healthy {
                // Reachable from the start: news for the log, not for the team's alerts.
                tracing::info!(prefix = %self.prefix, "Redis reachable: breakers share the fleet's state");
                return;
            }
            let message = if healthy {
                "Redis reachable: breakers share the fleet's state again".to_owned()
            } else {
                format!(
                    "Redis unreachable ({detail}): breakers decide locally with the same thresholds"
                )
            };
            tracing::warn!(prefix = %self.prefix, "{message}");
            notifier::emit("", EventKind::StoreHealth { healthy, message });
        }
    }
}

async fn connect(inner: &Inner) -> redis::RedisResult<Conn> {
    match &inner.backend {
        Backend::Single(client) => {
            let cfg = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT));
            client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
                .map(Conn::Single)
        }
        Backend::Cluster(urls) => {
            let client = redis::cluster::ClusterClientBuilder::new(urls.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .build()?;
            client.get_async_connection().await.map(Conn::Cluster)
        }
    }
}

async fn sync_loop(inner: Arc<Inner>, ready: std::sync::mpsc::Sender<()>) {
    let mut ready = Some(ready);
    loop {
        let started = std::time::Instant::now();
        let mut con = match connect(&inner).await {
            Ok(c) => c,
            Err(e) => {
                inner.note_failure(&redact(&e.to_string()), started);
                ready.take();
                tokio::time::sleep(RECONNECT_EVERY).await;
                continue;
            }
        };
        // Connected is not yet healthy: only an answer to a script says Redis works (a
        // cluster node can accept connections while the master for a slot is dead).
        let was_down = !inner.healthy.load(Ordering::Acquire);
        {
            let mut entries = lock(&inner.entries);
            for e in entries.values_mut() {
                if was_down {
                    // What happened while Redis was away was judged locally: sending those
                    // counts now would land a whole outage in one bucket of the fleet window.
                    let c = e.handle.counters();
                    e.sent_successes = c.successes;
                    e.sent_failures = c.failures;
                }
                e.needs_sync = true;
                e.listed = false;
            }
        }
        *lock(&inner.conn) = Some(con.clone());
        loop {
            let started = std::time::Instant::now();
            match flush_all(&inner, &mut con).await {
                Err(e) => {
                    *lock(&inner.conn) = None;
                    inner.note_failure(&redact(&e.to_string()), started);
                    break;
                }
                // Only an answer from Redis is news of its health (an idle round asks nothing).
                Ok(true) => inner.note_success(),
                Ok(false) => {}
            }
            // Started: the first round (the fleet marker's check at least) has had its answer.
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
            // Calls under way: every tick. Nothing to send: a slower tick (a failure, fleet
            // work or news wakes the loop at once anyway), so a thousand idle instances in one
            // process do not spin.
            let wait = if inner.busy() { TICK } else { IDLE_TICK };
            let _ = tokio::time::timeout(wait, inner.wake.notified()).await;
        }
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}

/// One round: for each breaker, a `RECORD` when it has something to send (or a heartbeat is
/// due), its probe results, and its housekeeping. A connection error ends the round (and the
/// connection); a script error about one breaker's data is reported and the others go on.
async fn flush_all(inner: &Inner, con: &mut Conn) -> redis::RedisResult<bool> {
    let now = std::time::Instant::now();
    let (names, heartbeat, forget_ms) = {
        let entries = lock(&inner.entries);
        let names: Vec<&'static str> = entries.keys().copied().collect();
        let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let period = HEARTBEAT_EVERY.max(HEARTBEAT_SPACING.saturating_mul(count));
        let mut next = lock(&inner.next_heartbeat);
        let heartbeat = if now >= *next {
            entries
                .iter()
                .filter(|(_, e)| now.duration_since(e.last_record) >= period)
                .min_by_key(|(_, e)| e.last_record)
                .map(|(n, _)| *n)
        } else {
            None
        };
        if heartbeat.is_some() {
            *next = now + HEARTBEAT_SPACING;
        }
        // An instance is listed as long as three heartbeats could have reached Redis.
        let forget = (period * 3).max(Duration::from_secs(360));
        (names, heartbeat, forget.as_millis())
    };
    let mut asked = false;
    let mut failed = None;
    // Every breaker's `RECORD` in one round trip (one Redis: a pipeline; a cluster: one
    // request per breaker, as its keys may live on any node).
    let outgoing: Vec<Outgoing> = names
        .iter()
        .filter_map(|n| outgoing(inner, n, heartbeat == Some(*n)))
        .collect();
    if !outgoing.is_empty() {
        asked = true;
        let started = std::time::Instant::now();
        let replies = send_records(inner, con, &outgoing, forget_ms).await?;
        for (o, reply) in outgoing.iter().zip(replies) {
            match take_record_reply(inner, con, o, reply).await {
                Ok(()) => breaker_answered(inner, o.name),
                Err(e) => {
                    breaker_failed(inner, o.name, &e, started);
                    failed.get_or_insert(e);
                }
            }
        }
    }
    for name in names {
        let started = std::time::Instant::now();
        match flush_one(inner, con, name).await {
            Ok(a) => {
                asked |= a;
                if a {
                    breaker_answered(inner, name);
                }
            }
            // One breaker's keys not answering (a cluster node down, a slow script) does not
            // hold up the others; if it goes on, that breaker decides locally.
            Err(e) => {
                breaker_failed(inner, name, &e, started);
                failed.get_or_insert(e);
            }
        }
    }
    for step in [fleet_marker(inner, con).await, deliveries(inner, con).await] {
        match step {
            Ok(a) => asked |= a,
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        // Nothing answered: the connection (or Redis) is what fails.
        Some(e) if !asked => Err(e),
        _ => Ok(asked),
    }
}

/// A breaker's requests failed (no answer in time): after `store_down_after` of that, it
/// decides locally (probes too) and the failure is reported once, as for data Redis refuses.
fn breaker_failed(
    inner: &Inner,
    name: &'static str,
    e: &redis::RedisError,
    started: std::time::Instant,
) {
    let after = Duration::from_millis(inner.down_after_ms.load(Ordering::Acquire));
    let handle = {
        let mut entries = lock(&inner.entries);
        let Some(en) = entries.get_mut(name) else {
            return;
        };
        let since = *en.failing_since.get_or_insert(started);
        (since.elapsed() >= after).then_some(en.handle)
    };
    if let Some(h) = handle {
        refused(inner, name, h, e);
    }
}

fn breaker_answered(inner: &Inner, name: &'static str) {
    if let Some(en) = lock(&inner.entries).get_mut(name) {
        en.failing_since = None;
    }
}

/// Marks the fleet alerts this instance sent delivered, once every notifier is done with
/// them. One a notifier could not deliver is left to its claim's lease: another instance (or
/// this one) sends it again when the lease runs out.
/// A breaker and the generation of one of its alerts.
type AlertRef = (&'static str, u64);

async fn deliveries(inner: &Inner, con: &mut Conn) -> redis::RedisResult<bool> {
    let now = std::time::Instant::now();
    let (done, renew): (Vec<AlertRef>, Vec<AlertRef>) = {
        let mut receipts = lock(&inner.receipts);
        receipts.retain(|(_, _, r, _)| !r.is_lost());
        let done = receipts
            .iter()
            .filter(|(_, _, r, _)| r.is_done())
            .map(|(n, g, _, _)| (*n, *g))
            .collect();
        let renew = receipts
            .iter_mut()
            .filter(|(_, _, r, at)| !r.is_done() && now.duration_since(*at) >= ALERT_RENEW)
            .map(|(n, g, _, at)| {
                *at = now;
                (*n, *g)
            })
            .collect();
        (done, renew)
    };
    for (name, generation) in &renew {
        let key = format!("{}:{{{name}}}:s", inner.prefix);
        // Still being delivered here: the claim stays this instance's.
        bounded(
            RESPONSE_TIMEOUT,
            inner
                .claim
                .key(&key)
                .arg(*generation)
                .arg(&inner.instance)
                .arg(ALERT_LEASE.as_millis())
                .arg("renew")
                .invoke_async::<Vec<(u64, String, String, u64)>>(con),
        )
        .await?;
    }
    for (name, generation) in &done {
        let key = format!("{}:{{{name}}}:s", inner.prefix);
        let mut inv = inner.delivered.prepare_invoke();
        inv.key(&key).arg(*generation);
        // On an error the rest stay for the next round (delivered; only the mark is late).
        bounded(RESPONSE_TIMEOUT, inv.invoke_async::<i64>(con)).await?;
        lock(&inner.receipts).retain(|(n, g, _, _)| (n, g) != (name, generation));
    }
    Ok(!done.is_empty() || !renew.is_empty())
}

/// KEYS: the fleet's marker hash. ARGV: a generation. Raises `hw` to it (never lowers it).
pub(crate) const RAISE_HW: &str = r#"
local hw = tonumber(redis.call('HGET', KEYS[1], 'hw') or '0') or 0
local g = tonumber(ARGV[1])
if g > hw then redis.call('HSET', KEYS[1], 'hw', g) end
return 1
"#;

/// The fleet's marker, `<prefix>:fleet`: `inc`, an incarnation id set when missing, and `hw`,
/// the highest generation any instance wrote. A Redis that lost data (restarted empty or from
/// an older snapshot, failed over to a replica that was behind, flushed) has no `inc`, or an
/// `hw` below what this instance saw: every breaker here exchanges a `RECORD` at once (which
/// writes the fleet's state back), and a new `inc` tells the other instances to do the same
/// (also those with breakers this instance does not have). Checked once a second; `hw` is
/// raised after this instance's scripts made a new generation.
async fn fleet_marker(inner: &Inner, con: &mut Conn) -> redis::RedisResult<bool> {
    let key = format!("{}:fleet", inner.prefix);
    let mut asked = false;
    let now = std::time::Instant::now();
    let due = {
        let mut next = lock(&inner.next_fleet_check);
        let due = now >= *next;
        if due {
            *next = now + FLEET_CHECK_EVERY;
        }
        due
    };
    if due {
        asked = true;
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&key).arg("inc").arg("hw");
        let (inc, hw): (Option<String>, Option<String>) =
            bounded(RESPONSE_TIMEOUT, cmd.query_async(con)).await?;
        // Compared with what was seen by the previous check: a generation seen since may not
        // be in `hw` yet (its writer raises it right after its script), one seen a second ago
        // must be.
        let seen = inner
            .checked_seen
            .swap(inner.max_seen.load(Ordering::Acquire), Ordering::AcqRel);
        let hw = hw.and_then(|h| h.parse::<u64>().ok()).unwrap_or(0);
        let known = lock(&inner.fleet_inc).clone();
        let behind = seen > 0 && (inc.is_none() || hw < seen);
        if behind {
            // This instance saw more than Redis holds: Redis lost data. Every instance is to
            // re-sync: a new incarnation says so.
            let fresh = format!(
                "{}-{}",
                inner.nonce,
                inner.tokens.fetch_add(1, Ordering::Relaxed)
            );
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&key).arg("inc").arg(&fresh);
            bounded(RESPONSE_TIMEOUT, cmd.query_async::<i64>(con)).await?;
            *lock(&inner.fleet_inc) = Some(fresh);
            tracing::warn!(prefix = %inner.prefix, "Redis holds less than this instance saw (restarted, restored, failed over or flushed): the fleet's state is written back");
            inner.resync_all();
            inner.hw_dirty.store(true, Ordering::Release);
        } else if let Some(inc) = inc {
            if known.as_ref().is_some_and(|k| *k != inc) {
                // Another instance found Redis behind: re-sync every breaker here too.
                inner.resync_all();
            } else if hw > inner.max_seen.load(Ordering::Acquire) {
                // A generation was written that this instance never heard of: its message was
                // lost. Re-sync (every breaker: the marker does not say which).
                inner.resync_all();
            }
            *lock(&inner.fleet_inc) = Some(inc);
        } else {
            // A fleet that never wrote anything yet.
            let mut cmd = redis::cmd("HSETNX");
            cmd.arg(&key).arg("inc").arg(&inner.nonce);
            bounded(RESPONSE_TIMEOUT, cmd.query_async::<i64>(con)).await?;
        }
    }
    if inner.hw_dirty.swap(false, Ordering::AcqRel) {
        asked = true;
        let seen = inner.max_seen.load(Ordering::Acquire);
        let r: redis::RedisResult<i64> = bounded(
            RESPONSE_TIMEOUT,
            inner.raise_hw.key(&key).arg(seen).invoke_async(con),
        )
        .await;
        if let Err(e) = r {
            inner.hw_dirty.store(true, Ordering::Release);
            return Err(e);
        }
    }
    Ok(asked)
}

/// The rest of a breaker's flush: its probe results and housekeeping.
async fn flush_one(inner: &Inner, con: &mut Conn, name: &'static str) -> redis::RedisResult<bool> {
    let Some(handle) = lock(&inner.entries).get(name).map(|e| e.handle) else {
        return Ok(false);
    };
    let mut asked = release_probes(inner, con, name, handle).await?;
    asked |= housekeeping(inner, con, name, handle).await?;
    Ok(asked)
}

/// One breaker's `RECORD`: its new counts.
struct Outgoing {
    name: &'static str,
    handle: &'static Breaker,
    successes: u64,
    failures: u64,
}

/// The `RECORD` a breaker has to send this round, if any: new counts, a re-sync, or its
/// heartbeat.
fn outgoing(inner: &Inner, name: &'static str, heartbeat: bool) -> Option<Outgoing> {
    let (handle, successes, failures, needs_sync, last) =
        lock(&inner.entries).get_mut(name).map(|e| {
            let c = e.handle.counters();
            if e.handle.forced().is_some() {
                // Outcomes under an operator's forced state do not count for the fleet.
                e.sent_successes = c.successes;
                e.sent_failures = c.failures;
            }
            (
                e.handle,
                c.successes.saturating_sub(e.sent_successes),
                c.failures.saturating_sub(e.sent_failures),
                e.needs_sync,
                e.last_record,
            )
        })?;
    // A verdict of this instance's own is only a reason to flush now: the fleet decides from
    // its counts, never from one instance's verdict (however old, after an outage).
    let local_event = handle.take_local_event();
    let rate_rule = handle.config().failure_rate.is_some();
    let (counts_due, successes_every) = if rate_rule {
        let due = last.elapsed() >= RATE_FLUSH_EVERY;
        (failures > 0 && due, RATE_FLUSH_EVERY)
    } else {
        // The count rule: a failure goes at once.
        (failures > 0, SUCCESS_FLUSH_EVERY)
    };
    let successes_due = successes > 0 && last.elapsed() >= successes_every;
    (counts_due || successes_due || needs_sync || heartbeat || local_event != 0).then_some(
        Outgoing {
            name,
            handle,
            successes,
            failures,
        },
    )
}

/// The arguments of `o`'s `RECORD` (see the script for their order).
fn record_args(inner: &Inner, o: &Outgoing, forget_ms: u128) -> Vec<String> {
    let b = o.handle;
    let cfg = b.config();
    let (view, view_remaining) = b.fleet_view();
    let forced = match b.forced() {
        Some(Forced::Open) => "open",
        Some(Forced::Closed) => "closed",
        _ => "",
    };
    vec![
        o.successes.to_string(),
        o.failures.to_string(),
        (cfg.window.as_millis() / 8).max(1).to_string(),
        cfg.threshold.to_string(),
        cfg.failure_rate.unwrap_or(0).to_string(),
        cfg.min_calls.to_string(),
        cfg.open_for.as_millis().max(1).to_string(),
        cfg.max_open_for.as_millis().max(1).to_string(),
        inner.channel.clone(),
        o.name.to_owned(),
        view_remaining.as_millis().to_string(),
        b.opens_in_row().to_string(),
        state_str(view).to_owned(),
        forced.to_owned(),
        inner.instance.clone(),
        cfg.quorum.to_string(),
        forget_ms.to_string(),
        b.fleet_generation().to_string(),
    ]
}

/// The `RECORD` command (`EVALSHA`) for `o`.
fn record_cmd(inner: &Inner, o: &Outgoing, forget_ms: u128) -> Cmd {
    let keys = inner.keys(o.name);
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(inner.record.get_hash())
        .arg(keys.len())
        .arg(&keys[..]);
    cmd.arg(record_args(inner, o, forget_ms));
    cmd
}

/// Sends the `RECORD`s: a pipeline on one Redis (the script is loaded first when Redis does
/// not have it), one request each on a cluster. A connection error fails the round; a script
/// error is one breaker's.
async fn send_records(
    inner: &Inner,
    con: &mut Conn,
    batch: &[Outgoing],
    forget_ms: u128,
) -> redis::RedisResult<Vec<redis::RedisResult<Reply>>> {
    let cmds: Vec<Cmd> = batch
        .iter()
        .map(|o| record_cmd(inner, o, forget_ms))
        .collect();
    let sent = std::time::Instant::now();
    let replies = if let Conn::Single(_) = con {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for c in &cmds {
            pipe.add_command(c.clone());
        }
        let mut replies: Vec<redis::RedisResult<Reply>> =
            bounded(RESPONSE_TIMEOUT, pipe.query_async(con)).await?;
        let no_script = |r: &redis::RedisResult<Reply>| matches!(r, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript));
        if replies.iter().any(no_script) {
            // Redis lost its script cache (restarted, or `SCRIPT FLUSH`): load it, send again.
            bounded(
                RESPONSE_TIMEOUT,
                inner.record.prepare_invoke().load_async(con),
            )
            .await?;
            replies = bounded(RESPONSE_TIMEOUT, pipe.query_async(con)).await?;
        }
        replies
    } else {
        let mut replies = Vec::with_capacity(batch.len());
        for o in batch {
            let mut inv = inner.record.prepare_invoke();
            for k in &inner.keys(o.name) {
                inv.key(k);
            }
            inv.arg(record_args(inner, o, forget_ms));
            match bounded(RESPONSE_TIMEOUT, inv.invoke_async(con)).await {
                Err(e) if is_connection_error(&e) => replies.push(Err(e)),
                r => replies.push(r),
            }
        }
        replies
    };
    // A moving average of the round trip (7/8 old, 1/8 new), for the probe requests' bound.
    let took = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
    let old = inner.rtt_us.load(Ordering::Acquire);
    inner.rtt_us.store(
        if old == 0 { took } else { (old * 7 + took) / 8 },
        Ordering::Release,
    );
    Ok(replies)
}

/// Adopts one breaker's `RECORD` reply (or reports what Redis refused).
async fn take_record_reply(
    inner: &Inner,
    con: &mut Conn,
    o: &Outgoing,
    reply: redis::RedisResult<Reply>,
) -> redis::RedisResult<()> {
    let (name, handle, successes, failures) = (o.name, &o.handle, o.successes, o.failures);
    let b = handle;
    let synced = lock(&inner.entries).get(name).map(|e| e.synced.clone());
    match reply {
        Ok(r) => {
            let (unflushed, was_refused, first) = {
                let mut entries = lock(&inner.entries);
                let now_failures = handle.counters().failures;
                match entries.get_mut(name) {
                    Some(e) => {
                        e.sent_successes += successes;
                        e.sent_failures += failures;
                        e.needs_sync = false;
                        e.last_record = std::time::Instant::now();
                        (
                            now_failures > e.sent_failures,
                            std::mem::replace(&mut e.refused, false),
                            e.cgen.is_none(),
                        )
                    }
                    None => (false, false, false),
                }
            };
            if was_refused {
                b.set_fleet_gate(inner.healthy.load(Ordering::Acquire));
            }
            adopt(inner, name, handle, &r, unflushed);
            if first {
                // A new breaker learns its controls before its first call is decided.
                let key = format!("{}:{{{name}}}:s", inner.prefix);
                read_controls(inner, con, name, handle, &key).await?;
            }
        }
        Err(e) if is_connection_error(&e) => return Err(e),
        Err(e) => {
            // Not taken again before its next heartbeat (a refused breaker must not take
            // every heartbeat from the others); its counts were judged here.
            if let Some(en) = lock(&inner.entries).get_mut(name) {
                en.last_record = std::time::Instant::now();
                en.needs_sync = false;
                en.sent_successes += successes;
                en.sent_failures += failures;
            }
            refused(inner, name, handle, &e);
        }
    }
    if let Some(s) = synced {
        s.store(true, Ordering::Release);
    }
    Ok(())
}

fn state_str(s: State) -> &'static str {
    match s {
        State::Open => "open",
        State::HalfOpen => "half_open",
        _ => "closed",
    }
}

/// Redis refused this breaker's data (malformed or foreign data under its keys, a read-only
/// replica, out of memory...): reported once, and the breaker decides locally (probes too) until
/// Redis accepts its data again.
fn refused(inner: &Inner, name: &'static str, handle: &'static Breaker, e: &redis::RedisError) {
    let first = lock(&inner.entries)
        .get_mut(name)
        .is_some_and(|en| !std::mem::replace(&mut en.refused, true));
    if first {
        handle.set_fleet_gate(false);
        let message = format!("Redis refused breaker data: {}", redact(&e.to_string()));
        tracing::error!(breaker = name, "{message}");
        notifier::emit(handle.name(), EventKind::StoreError { message });
    }
}

/// Gives back the leases of finished probes, with their verdicts.
async fn release_probes(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
) -> redis::RedisResult<bool> {
    let b = handle;
    let results = b.take_probe_results();
    if results.is_empty() {
        return Ok(false);
    }
    let keys = inner.keys(name);
    let limit = b.config().half_open_probes;
    let mut results = results.into_iter();
    while let Some((token, outcome)) = results.next() {
        let code = match outcome {
            crate::breaker::ProbeOutcome::Succeeded => 1,
            crate::breaker::ProbeOutcome::Failed => 0,
            _ => 2,
        };
        let mut inv = inner.release.prepare_invoke();
        inv.key(&keys[0]).key(&keys[1]).key(&keys[2]).key(&keys[3]);
        inv.arg(&token).arg(code).arg(limit);
        probe_script_tail(&mut inv, inner, name, handle);
        match bounded(RESPONSE_TIMEOUT, inv.invoke_async::<Granted>(con)).await {
            Ok(r) => adopt(inner, name, handle, &r.reply, false),
            Err(e) => {
                // Not delivered: keep it (and the rest) for the next flush.
                let mut rest = vec![(token, outcome)];
                rest.extend(results);
                b.restore_probe_results(rest);
                if is_connection_error(&e) {
                    return Err(e);
                }
                refused(inner, name, handle, &e);
                return Ok(true);
            }
        }
    }
    Ok(true)
}

/// Answers the calls waiting for a HALF_OPEN probe lease: one `ACQUIRE` each, sent at once
/// (concurrently, on the sync loop's connection), each bounded by the command timeout.
async fn acquire_loop(inner: Arc<Inner>) {
    loop {
        inner.acquire_wake.notified().await;
        let wanted: Vec<(&'static str, &'static Breaker, Vec<u64>)> = lock(&inner.entries)
            .iter()
            .filter_map(|(n, e)| {
                let leases = e.handle.take_probe_requests();
                (!leases.is_empty()).then_some((*n, e.handle, leases))
            })
            .collect();
        let con = lock(&inner.conn).clone();
        for (name, handle, leases) in wanted {
            for lease in leases {
                match &con {
                    // No connection: the call is refused at once (the fleet cannot be asked).
                    None => handle.answer_probe(lease, Err(Duration::ZERO), 0),
                    Some(c) => {
                        tokio::spawn(acquire_one(inner.clone(), c.clone(), name, handle, lease));
                    }
                }
            }
        }
    }
}

async fn acquire_one(
    inner: Arc<Inner>,
    mut con: Conn,
    name: &'static str,
    handle: &'static Breaker,
    lease: u64,
) {
    let b = handle;
    if !b.probe_wanted(lease) {
        return;
    }
    let cfg = b.config();
    let token = format!(
        "{}-{}",
        inner.nonce,
        inner.tokens.fetch_add(1, Ordering::Relaxed)
    );
    let started = std::time::Instant::now();
    let lease_ms = (cfg.probe_lease() + LEASE_SLACK).as_millis();
    let keys = inner.keys(name);
    let mut inv = inner.acquire.prepare_invoke();
    inv.key(&keys[0]).key(&keys[1]).key(&keys[2]);
    inv.arg(cfg.half_open_probes).arg(lease_ms).arg(&token);
    probe_script_tail(&mut inv, &inner, name, handle);
    let rtt = Duration::from_micros(inner.rtt_us.load(Ordering::Acquire));
    let limit = (rtt * 3).clamp(ACQUIRE_TIMEOUT, RESPONSE_TIMEOUT);
    match bounded(limit, inv.invoke_async::<Granted>(&mut con)).await {
        Ok(g) => {
            let generation = g.reply.fleet().map_or(0, |(_, gen_)| gen_);
            adopt(&inner, name, handle, &g.reply, false);
            if g.granted {
                b.answer_probe(lease, Ok(token), generation);
            } else {
                b.answer_probe(lease, Err(Duration::from_millis(g.wait_ms)), generation);
            }
        }
        Err(e) => {
            b.answer_probe(lease, Err(Duration::ZERO), 0);
            // The grant may have been made and its reply lost: give the token back (a release
            // of a lease not held is ignored), so it never expires as a failed probe.
            b.restore_probe_results(vec![(token, crate::breaker::ProbeOutcome::Abandoned)]);
            if is_connection_error(&e) {
                // A fleet that cannot answer a probe request in time is failing too: if it
                // goes on, probes are judged locally (Redis counts as down).
                inner.note_failure(&redact(&e.to_string()), started);
                inner.wake.notify_one();
            } else {
                refused(&inner, name, handle, &e);
            }
        }
    }
}

/// The reply of `RECORD` and `FORCE`: the fleet's state, the generation of an alert nobody has
/// claimed yet (0: none), and the control generation.
struct Reply {
    state: (String, u64, u64, String, u32),
    pending_alert: u64,
    cgen: u64,
    reset_gen: u64,
}

impl Reply {
    fn fleet(&self) -> Option<(FleetState, u64)> {
        parse_reply(&self.state)
    }
}

impl redis::FromRedisValue for Reply {
    fn from_redis_value(v: Value) -> Result<Self, redis::ParsingError> {
        let (state, generation, remaining, forced, opens, pending_alert, cgen, reset_gen): (
            String,
            u64,
            u64,
            String,
            u32,
            u64,
            u64,
            u64,
        ) = redis::FromRedisValue::from_redis_value(v)?;
        Ok(Reply {
            state: (state, generation, remaining, forced, opens),
            pending_alert,
            cgen,
            reset_gen,
        })
    }
}

/// The reply of `ACQUIRE` and `RELEASE`: a flag, the milliseconds until a probe slot may free
/// (`ACQUIRE` refused), then as [`Reply`].
struct Granted {
    granted: bool,
    wait_ms: u64,
    reply: Reply,
}

impl redis::FromRedisValue for Granted {
    fn from_redis_value(v: Value) -> Result<Self, redis::ParsingError> {
        // A flag, then the fields of a `Reply`.
        let mut items: Vec<Value> = redis::FromRedisValue::from_redis_value(v)?;
        if items.is_empty() {
            return Err(redis::ParsingError::from("an empty reply"));
        }
        if items.len() < 2 {
            return Err(redis::ParsingError::from("a reply without its flags"));
        }
        let flag: i64 = redis::FromRedisValue::from_redis_value(items.remove(0))?;
        let wait_ms: u64 = redis::FromRedisValue::from_redis_value(items.remove(0))?;
        Ok(Granted {
            granted: flag == 1,
            wait_ms,
            reply: redis::FromRedisValue::from_redis_value(Value::Array(items))?,
        })
    }
}

fn parse_state(s: &str) -> Option<State> {
    match s {
        "closed" => Some(State::Closed),
        "open" => Some(State::Open),
        "half_open" => Some(State::HalfOpen),
        _ => None,
    }
}

/// The arguments `ACQUIRE` and `RELEASE` end with: channel, name, open ms, max open ms, last
/// seen generation.
fn probe_script_tail(
    inv: &mut redis::ScriptInvocation<'_>,
    inner: &Inner,
    name: &str,
    handle: &'static Breaker,
) {
    let cfg = handle.config();
    inv.arg(&inner.channel)
        .arg(name)
        .arg(cfg.open_for.as_millis().max(1))
        .arg(cfg.max_open_for.as_millis().max(1))
        .arg(handle.fleet_generation());
}

/// Adopts a script's reply: the fleet's state, and the alert nobody has claimed yet.
fn adopt(inner: &Inner, name: &str, handle: &'static Breaker, reply: &Reply, unflushed: bool) {
    let mut fleet = reply.fleet();
    if let Some(e) = lock(&inner.entries).get_mut(name)
        && e.reset_seen.is_none_or(|r| reply.reset_gen > r)
    {
        // An operator reset this instance has not applied yet (its message was lost); the
        // first reply only tells where the breaker stands.
        if e.reset_seen.is_some()
            && let Some((f, _)) = fleet.as_mut()
        {
            f.reset = true;
        }
        e.reset_seen = Some(reply.reset_gen);
    }
    if let Some((_, generation)) = fleet
        && generation > inner.max_seen.fetch_max(generation, Ordering::AcqRel)
    {
        // A generation this instance had not seen: most likely its own script made it.
        inner.hw_dirty.store(true, Ordering::Release);
    }
    if let Some((_, generation)) = fleet
        && generation < handle.fleet_generation()
        && let Some(e) = lock(&inner.entries).get_mut(name)
    {
        // Redis is behind what this instance saw (it lost data): the next flush's `RECORD`
        // writes the fleet's state back.
        e.needs_sync = true;
        inner.wake.notify_one();
    }
    if let Some(e) = lock(&inner.entries).get_mut(name)
        && e.cgen.is_some_and(|c| c != reply.cgen)
    {
        // The controls changed (and their message may have been lost): read them.
        e.controls_stale = true;
    }
    apply(name, handle, fleet, unflushed);
    queue_claim(inner, name, reply.pending_alert);
}

/// Notes an alert a reply says nobody has claimed yet: this instance claims it at once (in the
/// same flush), so the instance whose write made the transition almost always sends it; if its
/// reply was lost or it died, another instance's next flush claims it.
fn queue_claim(inner: &Inner, name: &str, generation: u64) {
    if generation == 0 {
        return;
    }
    if let Some(e) = lock(&inner.entries).get_mut(name)
        && !e.claims.contains(&generation)
    {
        e.claims.push(generation);
    }
    inner.wake.notify_one();
}

fn alert_of(s: &str) -> Option<AlertKind> {
    match s {
        "opened" => Some(AlertKind::Opened),
        "recovered" => Some(AlertKind::Recovered),
        "store_reset" => Some(AlertKind::StoreReset),
        _ => None,
    }
}

/// Reads the breaker's controls (swap, fault, notice) and applies them here.
async fn read_controls(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
    key: &str,
) -> redis::RedisResult<()> {
    let reply: redis::RedisResult<ControlsReply> = bounded(
        RESPONSE_TIMEOUT,
        inner.read_controls.key(key).invoke_async(con),
    )
    .await;
    match reply {
        Ok(c) => {
            apply_controls(handle, &c);
            if let Some(e) = lock(&inner.entries).get_mut(name) {
                e.cgen = Some(c.5);
            }
            Ok(())
        }
        Err(e) if is_connection_error(&e) => Err(e),
        Err(e) => {
            refused(inner, name, handle, &e);
            Ok(())
        }
    }
}

/// `{swapped, fault, fault ms left, notice, notice ms left, cgen}`.
type ControlsReply = (i64, String, u64, String, u64, u64);

fn apply_controls(handle: &'static Breaker, c: &ControlsReply) {
    let b = handle;
    let left = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
    b.set_swapped(c.0 == 1);
    let fault = if c.1.is_empty() {
        None
    } else {
        match c.1.parse::<Fault>() {
            Ok(f) => Some(f),
            Err(e) => {
                let message = format!("Redis holds a malformed fault for this breaker: {e}");
                tracing::error!(breaker = handle.name(), "{message}");
                notifier::emit(handle.name(), EventKind::StoreError { message });
                None
            }
        }
    };
    b.set_fleet_fault(fault, left(c.2));
    b.set_notice(Some(c.3.as_str()), left(c.4));
}

/// The rest of a flush: the listing for `breakerctl`, alerts to claim, the chain's flag, and
/// the controls.
async fn housekeeping(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
) -> redis::RedisResult<bool> {
    let b = handle;
    let (list, claims, stale, clear_chain) = {
        let mut entries = lock(&inner.entries);
        let Some(e) = entries.get_mut(name) else {
            return Ok(false);
        };
        let stale = std::mem::take(&mut e.controls_stale);
        let clear_chain = e.chain_flagged && b.chain_ok();
        (!e.listed, std::mem::take(&mut e.claims), stale, clear_chain)
    };
    if !list && claims.is_empty() && !stale && !clear_chain && !b.chain_pending() {
        return Ok(false);
    }
    // A failed request about this breaker's data is reported and ends its housekeeping for this
    // flush; only a lost connection ends the flush round.
    let keys = inner.keys(name);
    let outcome = housekeeping_steps(
        inner,
        con,
        name,
        handle,
        &keys,
        list,
        claims,
        stale,
        clear_chain,
    )
    .await;
    match outcome {
        Err(e) if is_connection_error(&e) => Err(e),
        Err(e) => {
            refused(inner, name, handle, &e);
            Ok(true)
        }
        Ok(()) => Ok(true),
    }
}

/// Raises an alert this instance claimed (`store_reset`: only the first of the minute for
/// the fleet; the others are marked delivered).
#[allow(clippy::too_many_arguments)]
async fn raise_claimed(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
    keys: &[String; 5],
    generation: u64,
    kind: AlertKind,
    from: &str,
    failures: u64,
) -> redis::RedisResult<()> {
    let b = handle;
    let to = match kind {
        AlertKind::Opened => State::Open,
        AlertKind::StoreReset => b.fleet_view().0,
        _ => State::Closed,
    };
    let from = parse_state(from).unwrap_or(match kind {
        AlertKind::Opened => State::Closed,
        _ => State::Open,
    });
    if kind == AlertKind::StoreReset {
        // One alert per event for the fleet: Redis losing its data touches every breaker, and
        // every breaker's write-back is claimed; the first claim of the minute speaks. Keyed by
        // this alert: an instance that takes over a claim whose claimant died after winning
        // here still sends it. An error leaves the claim to run out: sent later, not lost.
        let id = format!("{name}:{generation}");
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}:store_reset", inner.prefix))
            .arg(&id)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(60_000);
        let holder: Option<String> = bounded(RESPONSE_TIMEOUT, cmd.query_async(con)).await?;
        if holder.is_some_and(|h| h != id) {
            let mut cmd = inner.delivered.prepare_invoke();
            cmd.key(&keys[0]).arg(generation);
            bounded(RESPONSE_TIMEOUT, cmd.invoke_async::<i64>(con)).await?;
            return Ok(());
        }
    }
    let receipt = notifier::Receipt::default();
    b.raise_fleet_alert(kind, from, to, failures, generation, receipt.clone());
    lock(&inner.receipts).push((name, generation, receipt, std::time::Instant::now()));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn housekeeping_steps(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
    keys: &[String; 5],
    list: bool,
    claims: Vec<u64>,
    stale: bool,
    clear_chain: bool,
) -> redis::RedisResult<()> {
    let b = handle;
    if list {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(format!("{}:breakers", inner.prefix))
            .arg(name)
            .arg(b.fallback().unwrap_or(""));
        bounded(RESPONSE_TIMEOUT, cmd.query_async::<i64>(con)).await?;
        if let Some(e) = lock(&inner.entries).get_mut(name) {
            e.listed = true;
        }
    }
    let mut claims = claims.into_iter();
    while let Some(generation) = claims.next() {
        let won: redis::RedisResult<Vec<(u64, String, String, u64)>> = bounded(
            RESPONSE_TIMEOUT,
            inner
                .claim
                .key(&keys[0])
                .arg(generation)
                .arg(&inner.instance)
                .arg(ALERT_LEASE.as_millis())
                .arg("claim")
                .invoke_async(con),
        )
        .await;
        let won = match won {
            Ok(r) => r,
            Err(e) => {
                // Not claimed: try again at the next flush (the claim is atomic, so trying
                // again can never send it twice).
                if let Some(en) = lock(&inner.entries).get_mut(name) {
                    en.claims.push(generation);
                    en.claims.extend(claims);
                }
                return Err(e);
            }
        };
        // This alert and the younger ones nobody held, oldest first: sent in that order.
        for (generation, kind, from, failures) in won {
            let Some(kind) = alert_of(&kind) else {
                continue;
            };
            raise_claimed(
                inner, con, name, handle, keys, generation, kind, &from, failures,
            )
            .await?;
        }
    }
    if b.take_chain_failure() {
        let mut cmd = redis::cmd("HSETNX");
        cmd.arg(&keys[0]).arg("chain_failed").arg(1);
        let won: i64 = bounded(RESPONSE_TIMEOUT, cmd.query_async(con)).await?;
        if let Some(e) = lock(&inner.entries).get_mut(name) {
            e.chain_flagged = true;
        }
        if won == 1 {
            let state = b.published_state();
            b.raise_alert(
                AlertKind::ChainFailed,
                state,
                state,
                0,
                b.forced(),
                b.injected(),
            );
        }
    } else if clear_chain {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(&keys[0]).arg("chain_failed");
        bounded(RESPONSE_TIMEOUT, cmd.query_async::<i64>(con)).await?;
        if let Some(e) = lock(&inner.entries).get_mut(name) {
            e.chain_flagged = false;
        }
    }
    if stale {
        read_controls(inner, con, name, handle, &keys[0]).await?;
    }
    Ok(())
}

/// `f`, or a timeout error after `limit`: no Redis request is awaited without a bound.
async fn bounded<T>(
    limit: Duration,
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| Err(timeout_error()))
}

fn timeout_error() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer in time",
    ))
}

fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

fn parse_reply(r: &(String, u64, u64, String, u32)) -> Option<(FleetState, u64)> {
    let state = match r.0.as_str() {
        "closed" => State::Closed,
        "open" => State::Open,
        "half_open" => State::HalfOpen,
        _ => return None,
    };
    let forced = match r.3.as_str() {
        "" => None,
        "open" => Some(Forced::Open),
        "closed" => Some(Forced::Closed),
        _ => return None,
    };
    Some((
        FleetState {
            state,
            forced,
            remaining: Duration::from_millis(r.2),
            opens_in_row: r.4,
            reset: false,
        },
        r.1,
    ))
}

fn apply(name: &str, handle: &'static Breaker, fleet: Option<(FleetState, u64)>, unflushed: bool) {
    let Some((fleet, generation)) = fleet else {
        let message = "Redis replied with a state this version does not know".to_owned();
        tracing::error!(breaker = name, "{message}");
        notifier::emit(handle.name(), EventKind::StoreError { message });
        return;
    };
    // Stale news (an older generation) is dropped under the machine's lock.
    handle.apply_fleet(fleet, generation, unflushed);
}

/// Applies every state change published by any instance.
async fn subscribe_loop(inner: Arc<Inner>) {
    loop {
        let ended = match &inner.backend {
            Backend::Single(client) => subscribe_single(&inner, client).await,
            Backend::Cluster(urls) => subscribe_cluster(&inner, urls).await,
        };
        // A subscription that cannot be made or is lost is Redis failing too: an idle instance
        // (nothing to flush) learns of an outage this way.
        let detail = match ended {
            Err(e) => redact(&e.to_string()),
            Ok(()) => "the subscription ended".to_owned(),
        };
        tracing::debug!(error = %detail, "breaker subscription lost");
        // Failing from now: a subscription that ran for hours failed just now.
        inner.note_failure(&detail, std::time::Instant::now());
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}

async fn subscribe_single(inner: &Inner, client: &Client) -> redis::RedisResult<()> {
    use futures_util::StreamExt as _;
    let subscribed = async {
        let mut ps = client.get_async_pubsub().await?;
        ps.subscribe(&[&inner.channel, &inner.controls_channel])
            .await?;
        redis::RedisResult::Ok(ps)
    };
    let ps = bounded(CONNECT_TIMEOUT * 2, subscribed).await?;
    // Anything published while we were away is in Redis: resynchronise with a flush now.
    inner.resync_all();
    let mut messages = ps.into_on_message();
    while let Some(msg) = messages.next().await {
        if let Ok(payload) = msg.get_payload::<String>() {
            handle_any(inner, msg.get_channel_name(), &payload);
        }
    }
    Ok(())
}

/// Cluster: classic `PUBLISH` is broadcast over the cluster bus, so one subscription on any
/// node hears every breaker; messages arrive as RESP3 pushes.
async fn subscribe_cluster(inner: &Inner, urls: &[String]) -> redis::RedisResult<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<redis::PushInfo>();
    let client = redis::cluster::ClusterClientBuilder::new(urls.to_vec())
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(tx)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .build()?;
    let subscribed = async {
        let mut con = client.get_async_connection().await?;
        con.subscribe(&[&inner.channel, &inner.controls_channel])
            .await?;
        redis::RedisResult::Ok(con)
    };
    let _con = bounded(CONNECT_TIMEOUT * 4, subscribed).await?;
    inner.resync_all();
    while let Some(push) = rx.recv().await {
        match push.kind {
            redis::PushKind::Message => {
                if let (Some(Value::BulkString(c)), Some(Value::BulkString(b))) =
                    (push.data.first(), push.data.get(1))
                {
                    handle_any(
                        inner,
                        &String::from_utf8_lossy(c),
                        &String::from_utf8_lossy(b),
                    );
                }
            }
            redis::PushKind::Subscribe => inner.resync_all(),
            _ => {}
        }
    }
    Ok(())
}

/// A message on either channel: the controls channel carries a breaker's name (re-read its
/// controls); the events channel a state change.
fn handle_any(inner: &Inner, channel: &str, payload: &str) {
    if channel == inner.controls_channel {
        if let Some(e) = lock(&inner.entries).get_mut(payload) {
            e.controls_stale = true;
        }
        inner.wake.notify_one();
    } else {
        handle_message(inner, payload);
    }
}

/// The fields of a message on the events channel.
struct Message<'a> {
    name: &'a str,
    state: &'a str,
    generation: u64,
    remaining: u64,
    forced: &'a str,
    opens: u32,
    alert: &'a str,
    op: &'a str,
}

/// `name|state|generation|remaining_ms|forced|opens|alert|op`; the name may itself contain `|`.
/// A message of an instance of the previous version (no `op`) is read too, so a fleet can be
/// upgraded one instance at a time.
fn parse_message(payload: &str) -> Option<Message<'_>> {
    parse_fields(payload, true).or_else(|| parse_fields(payload, false))
}

fn parse_fields(payload: &str, with_op: bool) -> Option<Message<'_>> {
    let mut parts = payload.rsplitn(if with_op { 8 } else { 7 }, '|');
    let op = if with_op { parts.next()? } else { "" };
    let alert = parts.next()?;
    let opens = parts.next()?.parse().ok()?;
    let forced = parts.next()?;
    let remaining = parts.next()?.parse().ok()?;
    let generation = parts.next()?.parse().ok()?;
    let state = parts.next()?;
    let name = parts.next()?;
    if !matches!(state, "closed" | "open" | "half_open") {
        return None;
    }
    Some(Message {
        name,
        state,
        generation,
        remaining,
        forced,
        opens,
        alert,
        op,
    })
}

/// A state change published by any instance (or an operator). An alert-worthy change is
/// claimed at the next flush (by one instance: the claim is atomic).
fn handle_message(inner: &Inner, payload: &str) {
    let Some(m) = parse_message(payload) else {
        tracing::warn!(%payload, "ignoring a malformed breaker message");
        return;
    };
    inner.max_seen.fetch_max(m.generation, Ordering::AcqRel);
    let found = lock(&inner.entries).get_mut(m.name).map(|e| {
        if m.op == "reset" {
            e.reset_seen = Some(e.reset_seen.unwrap_or(0).max(m.generation));
        }
        if !m.alert.is_empty() && !e.claims.contains(&m.generation) {
            // An alert-worthy transition: race to claim it (whoever made it).
            e.claims.push(m.generation);
            inner.wake.notify_one();
        }
        (e.handle, e.sent_failures)
    });
    let Some((handle, sent_failures)) = found else {
        return;
    };
    let unflushed = handle.counters().failures > sent_failures;
    let fleet = parse_reply(&(
        m.state.to_owned(),
        m.generation,
        m.remaining,
        m.forced.to_owned(),
        m.opens,
    ))
    .map(|(mut f, g)| {
        f.reset = m.op == "reset";
        (f, g)
    });
    apply(m.name, handle, fleet, unflushed);
}

/// 128 random bits from the standard library's per-process hash keys, the clock and the pid.
fn process_nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        *w = h.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes a password from a message that may quote a URL.
fn redact(s: &str) -> String {
    match (s.find("://"), s.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &s[..scheme], &s[at..]),
        _ => s.to_owned(),
    }
}

impl Store for RedisStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Redis
    }

    fn set_store_down_after(&self, after: Duration) {
        RedisStore::set_store_down_after(self, after);
    }

    fn attach(&self, breaker: &'static Breaker) {
        let inner = self.inner.clone();
        let synced = Arc::new(AtomicBool::new(false));
        {
            let c = breaker.counters();
            lock(&inner.entries).insert(
                breaker.name(),
                Entry {
                    handle: breaker,
                    sent_successes: c.successes,
                    sent_failures: c.failures,
                    synced: synced.clone(),
                    refused: false,
                    cgen: None,
                    controls_stale: false,
                    claims: Vec::new(),
                    chain_flagged: false,
                    needs_sync: true,
                    last_record: std::time::Instant::now(),
                    listed: false,
                    failing_since: None,
                    reset_seen: None,
                },
            );
        }
        let waker = inner.clone();
        breaker.set_store_waker(Box::new(move || waker.wake.notify_one()));
        let probes = inner.clone();
        breaker.set_probe_waker(Box::new(move || probes.acquire_wake.notify_one()));
        breaker.set_fleet_gate(inner.healthy.load(Ordering::Acquire));
        inner.wake.notify_one();
        // A new instance learns the fleet's state before its first call is decided, within a
        // bounded wait (none while the store has no connection to Redis).
        let connected = lock(&inner.conn).is_some();
        if connected {
            let start = std::time::Instant::now();
            while !synced.load(Ordering::Acquire) && start.elapsed() < FIRST_SYNC_BUDGET {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn command(
        &self,
        breaker: &'static Breaker,
        command: Command,
    ) -> StoreFuture<'_, Result<(), StoreError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let name = breaker.name();
            let forced = match command {
                Command::ForceOpen => "open",
                Command::ForceClosed => "closed",
                Command::Reset => "",
            };
            let seen = breaker.fleet_generation();
            let task_inner = inner.clone();
            // Timed on the store's own runtime: this future may be awaited on any executor.
            let task = inner.rt.spawn(async move {
                bounded(Duration::from_secs(2), async {
                    let mut con = connect(&task_inner).await?;
                    let keys = task_inner.keys(name);
                    let mut inv = task_inner.force.prepare_invoke();
                    inv.key(&keys[0])
                        .key(&keys[1])
                        .key(&keys[2])
                        .key(&keys[3])
                        .arg(forced)
                        .arg(&task_inner.channel)
                        .arg(name)
                        .arg(seen);
                    let reply = inv.invoke_async::<Reply>(&mut con).await?;
                    let command = match forced {
                        "open" => "open",
                        "closed" => "close",
                        _ => "reset",
                    };
                    audit(&task_inner, &mut con, command, name, "from the application").await;
                    Ok(reply)
                })
                .await
            });
            let reply = task
                .await
                .map_err(|e| StoreError::new(format!("Redis task failed: {e}")))?
                .map_err(|e| StoreError::new(format!("Redis: {}", redact(&e.to_string()))))?;
            // Outcomes counted before the command belong to the state it replaced.
            if let Some(e) = lock(&inner.entries).get_mut(name) {
                let c = breaker.counters();
                e.sent_successes = c.successes;
                e.sent_failures = c.failures;
            }
            if command == Command::Reset {
                // A reset ends even this instance's own episode.
                let fleet = reply.fleet().map(|(mut f, g)| {
                    f.reset = true;
                    (f, g)
                });
                apply(name, breaker, fleet, false);
                queue_claim(&inner, name, reply.pending_alert);
            } else {
                adopt(&inner, name, breaker, &reply, false);
            }
            Ok(())
        })
    }

    fn control(
        &self,
        breaker: &'static Breaker,
        control: Control,
    ) -> StoreFuture<'_, Result<(), StoreError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let name = breaker.name();
            let ms = |d: &Option<Duration>| d.map_or(0, |d| d.as_millis().max(1));
            let (op, value, for_ms) = match &control {
                Control::Swap(on) => ("swap", if *on { "1" } else { "0" }.to_owned(), 0),
                Control::Fault(f, for_) => (
                    "fault",
                    f.map(|f| f.to_string()).unwrap_or_default(),
                    ms(for_),
                ),
                Control::Notice(text, for_) => {
                    ("notice", text.clone().unwrap_or_default(), ms(for_))
                }
            };
            let detail = match (&control, for_ms) {
                (Control::Swap(on), _) => if *on { "swapped" } else { "order restored" }.to_owned(),
                (_, _) if value.is_empty() => "cleared".to_owned(),
                (_, 0) => format!("{value} until cleared"),
                (_, ms) => format!("{value} for {ms} ms"),
            };
            let task_inner = inner.clone();
            let task = inner.rt.spawn(async move {
                bounded(Duration::from_secs(2), async {
                    let mut con = connect(&task_inner).await?;
                    let keys = task_inner.keys(name);
                    let reply = task_inner
                        .write_control
                        .key(&keys[0])
                        .arg(op)
                        .arg(value)
                        .arg(for_ms)
                        .arg(&task_inner.controls_channel)
                        .arg(name)
                        .invoke_async::<ControlsReply>(&mut con)
                        .await?;
                    let command = if op == "fault" { "inject" } else { op };
                    audit(&task_inner, &mut con, command, name, &detail).await;
                    Ok(reply)
                })
                .await
            });
            let reply = task
                .await
                .map_err(|e| StoreError::new(format!("Redis task failed: {e}")))?
                .map_err(|e| StoreError::new(format!("Redis: {}", redact(&e.to_string()))))?;
            apply_controls(breaker, &reply);
            if let Some(e) = lock(&inner.entries).get_mut(name) {
                e.cgen = Some(reply.5);
            }
            Ok(())
        })
    }
}

/// Appends an operator change made from application code to the audit log `breakerctl audit`
/// reads (`<prefix>:audit`, newest first, the last 1000). Best effort: the change itself has
/// been made.
async fn audit(inner: &Inner, con: &mut Conn, command: &str, breaker: &str, detail: &str) {
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".to_owned());
    let who = format!("{program}@{}", hostname());
    let entry = format!(
        r#"{{"at_ms":{at_ms},"who":{},"command":{},"breaker":{},"detail":{}}}"#,
        json_string(&who),
        json_string(command),
        json_string(breaker),
        json_string(detail)
    );
    let key = format!("{}:audit", inner.prefix);
    let mut pipe = redis::pipe();
    pipe.cmd("LPUSH")
        .arg(&key)
        .arg(entry)
        .ignore()
        .cmd("LTRIM")
        .arg(&key)
        .arg(0)
        .arg(999)
        .ignore();
    if let Err(e) = pipe.query_async::<()>(con).await {
        tracing::warn!(breaker, error = %redact(&e.to_string()), "could not write the audit entry");
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// This machine's name, for instance ids.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_entries_are_json_whatever_the_text() {
        assert_eq!(json_string("plain"), r#""plain""#);
        assert_eq!(
            json_string("a \"quoted\" \\ path\nnew\tline\u{1}"),
            r#""a \"quoted\" \\ path\nnew\tline\u0001""#
        );
        assert_eq!(json_string("주소 검색"), "\"주소 검색\"");
    }

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact("cannot reach redis://user:secret@host:6379/0"),
            "cannot reach redis://***@host:6379/0"
        );
        assert_eq!(redact("plain message"), "plain message");
    }

    #[test]
    fn messages_of_both_versions_parse() {
        let m = parse_message("svc|daum|open|1796427146042|800||1|opened|").unwrap();
        assert_eq!(
            (m.name, m.state, m.generation, m.remaining),
            ("svc|daum", "open", 1_796_427_146_042, 800)
        );
        assert_eq!((m.alert, m.op), ("opened", ""));
        let m = parse_message("daum|closed|9|0||0||reset").unwrap();
        assert_eq!((m.name, m.op), ("daum", "reset"));
        // The previous version's seven fields.
        let m = parse_message("a|b|closed|7|0|open|0|recovered").unwrap();
        assert_eq!(
            (m.name, m.state, m.forced, m.alert, m.op),
            ("a|b", "closed", "open", "recovered", "")
        );
        assert!(parse_message("daum|ajar|1|0||0||").is_none());
        assert!(parse_message("nonsense").is_none());
    }

    #[test]
    fn messages_parse_names_with_separators() {
        let r = parse_reply(&("open".into(), 3, 1500, String::new(), 2)).unwrap();
        assert_eq!(r.0.state, State::Open);
        assert_eq!(r.0.remaining, Duration::from_millis(1500));
        assert_eq!(r.1, 3);
        assert!(parse_reply(&("ajar".into(), 3, 0, String::new(), 0)).is_none());
        assert!(parse_reply(&("open".into(), 3, 0, "maybe".into(), 0)).is_none());
    }
}
