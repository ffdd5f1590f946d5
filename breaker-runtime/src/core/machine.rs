//! The breaker's state machine: pure, synchronous and driven by timestamps.
//!
//! Nothing here reads a clock, spawns a task or locks: every input carries `now` (nanoseconds on a
//! monotonic clock chosen by the caller), so the same machine serves the in-memory store, the
//! Redis store (which feeds it the fleet's view) and the property tests (which feed it a model's).
//! OPEN → HALF_OPEN is computed when `now >= open_until`, never by a background timer.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::core::config::Config;

/// Nanoseconds since a clock's origin.
pub type Nanos = u64;

/// The state of a breaker.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls flow; failures are counted.
    Closed,
    /// Calls are rejected without calling the function.
    Open,
    /// A limited number of probe calls is let through.
    HalfOpen,
}

impl State {
    /// `"CLOSED"`, `"OPEN"` or `"HALF_OPEN"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Open => "OPEN",
            State::HalfOpen => "HALF_OPEN",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state set by an operator that holds until `reset`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forced {
    /// Reject every call; never drifts into HALF_OPEN (resilience4j's FORCED_OPEN).
    Open,
    /// Call the function whatever fails; never trips (resilience4j's DISABLED).
    Closed,
}

/// Why a transition happened.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `threshold` failures fell inside the window.
    Threshold {
        /// Failures counted in the window.
        failures: u32,
    },
    /// The rate rule: at least `failure_rate` percent of the calls in the window failed.
    FailureRate {
        /// Failed calls in the window.
        failures: u64,
        /// All calls in the window.
        calls: u64,
    },
    /// The open period elapsed.
    OpenElapsed,
    /// A HALF_OPEN probe failed.
    ProbeFailed,
    /// A HALF_OPEN probe neither answered nor was dropped within its lease.
    ProbeExpired,
    /// `half_open_probes` probes succeeded.
    ProbesSucceeded,
    /// An operator forced the breaker open.
    ForcedOpen,
    /// An operator forced the breaker closed.
    ForcedClosed,
    /// An operator reset the breaker.
    Reset,
    /// The fleet's shared state (from a shared store) changed this instance's state.
    Fleet,
}

/// The fleet's view of a breaker, as a shared store reports it. Durations are relative (the
/// store's clock is never compared with this process's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetState {
    /// The fleet's state.
    pub state: State,
    /// The operator's forced state, fleet-wide.
    pub forced: Option<Forced>,
    /// For OPEN: time left.
    pub remaining: Duration,
    /// Consecutive openings, for the backoff of the next one.
    pub opens_in_row: u32,
    /// An operator reset the breaker in this change: it applies even to an instance in an
    /// episode of its own.
    pub reset: bool,
}

/// One change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// The generation after the transition (every transition increments it).
    pub generation: u64,
    /// For a transition to OPEN (not forced): how long it stays open.
    pub open_for: Option<Duration>,
}

/// The machine's answer to a call asking to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Run as a normal call.
    Call {
        /// Generation at admission; a late outcome from an older generation does not count.
        generation: u64,
    },
    /// Run as a HALF_OPEN probe holding lease `lease`.
    Probe {
        /// Generation at admission.
        generation: u64,
        /// The lease id, returned with the outcome.
        lease: u64,
    },
    /// Rejected.
    Reject {
        /// When a call may next be admitted, if known (`None` while forced open).
        retry_after: Option<Duration>,
    },
}

/// What a call was admitted as, handed back with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Generation at admission.
    pub generation: u64,
    /// The probe lease, for a HALF_OPEN probe.
    pub lease: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lease {
    id: u64,
    until: Nanos,
}

/// Number of buckets the rate rule's window is divided into.
pub const RATE_BUCKETS: u64 = 8;

/// The bucket (epoch) `now` falls in for the rate rule's window of `window`.
#[must_use]
pub fn rate_epoch(window: Duration, now: Nanos) -> u64 {
    let width = u64::try_from(window.as_nanos() / u128::from(RATE_BUCKETS))
        .unwrap_or(u64::MAX)
        .max(1);
    now / width
}

/// The state machine of one breaker.
#[derive(Debug, Clone)]
pub struct Machine {
    cfg: Config,
    state: State,
    forced: Option<Forced>,
    generation: u64,
    open_until: Nanos,
    /// Consecutive openings without a close in between: drives the doubling of `open_for`.
    opens_in_row: u32,
    /// Timestamps of the most recent failures still inside the window (at most `threshold`).
    failures: VecDeque<Nanos>,
    /// Rate rule: failures per epoch, `(epoch, count)`, one slot per bucket.
    rate_failures: [(u64, u64); RATE_BUCKETS as usize],
    /// Rate rule: buckets before this epoch were counted before the last close and are ignored.
    window_floor: u64,
    probes: Vec<Lease>,
    probe_successes: u32,
    next_lease: u64,
    rng: u64,
    /// Probes are admitted and judged by the fleet (a shared store): a local probe success
    /// frees its lease but does not close; the fleet's verdict arrives through `apply_fleet`.
    fleet_probes: bool,
    /// The highest fleet generation applied: older fleet news is ignored.
    fleet_generation: u64,
    /// This instance's own failures opened it and the fleet has not opened since: the episode
    /// is this instance's (its own open period, local probes), whatever the fleet's counts say.
    local_episode: bool,
    /// The fleet's state as last reported (kept also while an own episode hides it), with the
    /// end of its OPEN: what a store that lost its data is told back.
    fleet_state: State,
    fleet_open_until: Nanos,
}

impl Machine {
    /// A CLOSED machine. `seed` drives the jitter of backed-off open periods.
    #[must_use]
    pub fn new(cfg: Config, seed: u64) -> Self {
        debug_assert!(cfg.validate().is_ok(), "invalid breaker config: {cfg:?}");
        Machine {
            cfg,
            state: State::Closed,
            forced: None,
            generation: 0,
            open_until: 0,
            opens_in_row: 0,
            failures: VecDeque::new(),
            rate_failures: [(0, 0); RATE_BUCKETS as usize],
            window_floor: 0,
            probes: Vec::new(),
            probe_successes: 0,
            next_lease: 1,
            // xorshift must not start at zero.
            rng: seed | 1,
            fleet_probes: false,
            fleet_generation: 0,
            local_episode: false,
            fleet_state: State::Closed,
            fleet_open_until: 0,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The state as of the last input (call [`Machine::tick`] first to let time pass).
    #[must_use]
    pub fn state(&self) -> State {
        self.state
    }

    /// The operator's forced state, if any.
    #[must_use]
    pub fn forced(&self) -> Option<Forced> {
        self.forced
    }

    /// Incremented by every transition.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When OPEN ends (meaningful in OPEN only).
    #[must_use]
    pub fn open_until(&self) -> Nanos {
        self.open_until
    }

    /// Probes in flight.
    #[must_use]
    pub fn probes_in_flight(&self) -> usize {
        self.probes.len()
    }

    /// The first epoch the rate rule counts successes from.
    #[must_use]
    pub fn window_floor(&self) -> u64 {
        self.window_floor
    }

    /// How long until a call may be admitted: `None` while forced open; the rest of the open
    /// period in OPEN; in HALF_OPEN, until the first probe lease runs out (a probe's result may
    /// come sooner); zero when calls are admitted now.
    #[must_use]
    pub fn retry_after(&self, now: Nanos) -> Option<Duration> {
        let until = match (self.forced, self.state) {
            (Some(Forced::Open), _) => return None,
            (Some(Forced::Closed), _) | (None, State::Closed) => now,
            (None, State::Open) => self.open_until,
            (None, State::HalfOpen) if self.probes.len() < self.cfg.half_open_probes as usize => {
                now
            }
            (None, State::HalfOpen) => self.probes.iter().map(|l| l.until).min().unwrap_or(now),
        };
        Some(nanos_dur(until.saturating_sub(now)))
    }

    /// Failures inside the window at `now` (for the threshold rule).
    #[must_use]
    pub fn failures_in_window(&self, now: Nanos) -> usize {
        let window = dur_nanos(self.cfg.window);
        self.failures
            .iter()
            .filter(|&&t| t.saturating_add(window) > now)
            .count()
    }

    /// Lets time pass: OPEN becomes HALF_OPEN once `now >= open_until`; in HALF_OPEN, a probe
    /// lease that ran out re-opens the breaker.
    pub fn tick(&mut self, now: Nanos) -> Option<Transition> {
        match self.state {
            State::Open if self.forced.is_none() && now >= self.open_until => {
                self.probes.clear();
                self.probe_successes = 0;
                Some(self.transition(State::HalfOpen, Reason::OpenElapsed, None))
            }
            // A probe that has neither answered nor been dropped within its lease counts as a
            // failed probe: a hung provider re-opens the breaker (with backoff) instead of
            // taking one fresh probe per lease.
            State::HalfOpen
                if self.forced.is_none() && self.probes.iter().any(|l| l.until <= now) =>
            {
                self.opens_in_row = self.opens_in_row.saturating_add(1);
                Some(self.open(now, Reason::ProbeExpired))
            }
            _ => None,
        }
    }

    /// Decides whether a call may run.
    pub fn acquire(&mut self, now: Nanos) -> (Admit, Option<Transition>) {
        let t = self.tick(now);
        let admit = match (self.forced, self.state) {
            (Some(Forced::Open), _) => Admit::Reject { retry_after: None },
            (Some(Forced::Closed), _) | (None, State::Closed) => Admit::Call {
                generation: self.generation,
            },
            (None, State::HalfOpen) if self.probes.len() < self.cfg.half_open_probes as usize => {
                let id = self.next_lease;
                self.next_lease += 1;
                let until = now.saturating_add(dur_nanos(self.cfg.probe_lease()));
                self.probes.push(Lease { id, until });
                Admit::Probe {
                    generation: self.generation,
                    lease: id,
                }
            }
            (None, State::Open | State::HalfOpen) => Admit::Reject {
                retry_after: self.retry_after(now),
            },
        };
        (admit, t)
    }

    /// Records a success. Only probes change state on success; a normal call's success is counted
    /// outside the machine (it is the hot path).
    pub fn on_success(&mut self, now: Nanos, ticket: Ticket) -> Option<Transition> {
        let lease = ticket.lease?;
        if !self.take_lease(ticket, lease) || self.probes_judged_by_fleet() {
            return None;
        }
        self.probe_successes += 1;
        if self.probe_successes >= self.cfg.half_open_probes {
            self.close(now);
            return Some(self.transition(State::Closed, Reason::ProbesSucceeded, None));
        }
        None
    }

    /// Records a failure observed at `now`. `window_successes` is the number of successful calls
    /// in the rate rule's window (ignored when the rule is off).
    pub fn on_failure(
        &mut self,
        now: Nanos,
        ticket: Ticket,
        window_successes: u64,
    ) -> Option<Transition> {
        if self.forced.is_some() || ticket.generation != self.generation {
            return None;
        }
        if let Some(lease) = ticket.lease {
            if self.state != State::HalfOpen || !self.take_lease(ticket, lease) {
                return None;
            }
            self.opens_in_row = self.opens_in_row.saturating_add(1);
            return Some(self.open(now, Reason::ProbeFailed));
        }
        if self.state != State::Closed {
            return None;
        }
        let window = dur_nanos(self.cfg.window);
        while self
            .failures
            .front()
            .is_some_and(|&t| t.saturating_add(window) <= now)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if self.failures.len() > self.cfg.threshold as usize {
            self.failures.pop_front();
        }
        if self.failures.len() >= self.cfg.threshold as usize {
            let failures = u32::try_from(self.failures.len()).unwrap_or(u32::MAX);
            self.opens_in_row = 1;
            self.local_episode = true;
            return Some(self.open(now, Reason::Threshold { failures }));
        }
        if let Some(rate) = self.cfg.failure_rate {
            let epoch = rate_epoch(self.cfg.window, now);
            let slot = &mut self.rate_failures[(epoch % RATE_BUCKETS) as usize];
            if slot.0 == epoch {
                slot.1 += 1;
            } else {
                *slot = (epoch, 1);
            }
            let failures: u64 = self
                .rate_failures
                .iter()
                .filter(|(e, _)| in_rate_window(*e, epoch, self.window_floor))
                .map(|(_, n)| n)
                .sum();
            let calls = failures.saturating_add(window_successes);
            if calls >= u64::from(self.cfg.min_calls)
                && failures.saturating_mul(100) >= u64::from(rate).saturating_mul(calls)
            {
                self.opens_in_row = 1;
                self.local_episode = true;
                return Some(self.open(now, Reason::FailureRate { failures, calls }));
            }
        }
        None
    }

    /// A probe ended without an outcome (its future was dropped): its permit comes back.
    pub fn on_cancel(&mut self, ticket: Ticket) {
        if let Some(lease) = ticket.lease {
            self.take_lease(ticket, lease);
        }
    }

    /// Adopts the fleet's state. An OPEN instance does not close on a fleet reply that has not
    /// counted its latest failures (`unflushed_failures`): that reply predates its evidence.
    ///
    /// Local first: in an episode of its own (its own failures opened it) the instance keeps
    /// its own open period and probes, whatever the fleet's counts say; only the fleet opening
    /// (the stricter state), an operator's force or an operator's reset end it. An OPEN period
    /// longer than `max_open_for` is taken as `max_open_for`: a time from the store is clamped,
    /// not trusted.
    pub fn apply_fleet(
        &mut self,
        now: Nanos,
        mut fleet: FleetState,
        generation: u64,
        unflushed_failures: bool,
    ) -> Option<Transition> {
        // Fleet news arrives by two paths (flush replies, published messages): an older
        // generation than one already applied is stale.
        if generation < self.fleet_generation {
            return None;
        }
        self.fleet_generation = generation;
        fleet.remaining = fleet.remaining.min(self.cfg.max_open_for);
        self.fleet_state = fleet.state;
        self.fleet_open_until = now.saturating_add(dur_nanos(fleet.remaining));
        let mut operator = None;
        if fleet.forced != self.forced || fleet.reset {
            operator = self.force(now, fleet.forced);
            if self.forced.is_some() {
                return operator;
            }
            // Reset by the fleet: its state (applied below) is the one to report, if it differs.
        }
        if self.forced.is_some() {
            return None;
        }
        if self.local_episode && fleet.state != State::Open {
            // The instance's own evidence: it keeps its open period and its own probing.
            return operator;
        }
        self.local_episode = false;
        self.opens_in_row = fleet
            .opens_in_row
            .max(u32::from(fleet.state == State::Open));
        let changed = match fleet.state {
            State::Open => {
                let until = now.saturating_add(dur_nanos(fleet.remaining));
                if self.state == State::Open {
                    // The stricter of the two: an own open period that ends later stands.
                    self.open_until = self.open_until.max(until);
                    return operator;
                }
                self.open_until = until;
                self.failures.clear();
                self.probes.clear();
                self.probe_successes = 0;
                Some(self.transition(State::Open, Reason::Fleet, Some(fleet.remaining)))
            }
            State::HalfOpen if self.state != State::HalfOpen => {
                self.probes.clear();
                self.probe_successes = 0;
                self.open_until = now;
                Some(self.transition(State::HalfOpen, Reason::Fleet, None))
            }
            State::Closed if self.state != State::Closed && !unflushed_failures => {
                self.close(now);
                Some(self.transition(State::Closed, Reason::Fleet, None))
            }
            _ => None,
        };
        changed.or(operator)
    }

    /// Whether the probe holding local lease `lease` is still live (the episode it was
    /// admitted in goes on).
    #[must_use]
    pub fn holds_lease(&self, lease: u64) -> bool {
        self.probes.iter().any(|l| l.id == lease)
    }

    /// Whether HALF_OPEN probes are admitted and judged by the fleet (a shared store is
    /// reachable and the episode is the fleet's), rather than by this instance alone.
    #[must_use]
    pub fn probes_judged_by_fleet(&self) -> bool {
        self.fleet_probes && !self.local_episode
    }

    /// Whether the current episode is this instance's own (see [`Machine::apply_fleet`]).
    #[must_use]
    pub fn local_episode(&self) -> bool {
        self.local_episode
    }

    /// The fleet's state as last reported, and the time its OPEN has left at `now` (an OPEN
    /// whose time is up reads as HALF_OPEN): what a store that lost its data is told back.
    /// Never this instance's own episode.
    #[must_use]
    pub fn fleet_view(&self, now: Nanos) -> (State, Duration) {
        match self.fleet_state {
            State::Open if self.fleet_open_until > now => {
                (State::Open, nanos_dur(self.fleet_open_until - now))
            }
            State::Open => (State::HalfOpen, Duration::ZERO),
            other => (other, Duration::ZERO),
        }
    }

    /// The highest fleet generation applied.
    #[must_use]
    pub fn fleet_generation(&self) -> u64 {
        self.fleet_generation
    }

    /// Hands the verdict on probes to the fleet (see the field's doc), or takes it back.
    pub fn set_fleet_probes(&mut self, on: bool) {
        self.fleet_probes = on;
    }

    /// Consecutive openings without a close (drives the backoff).
    #[must_use]
    pub fn opens_in_row(&self) -> u32 {
        self.opens_in_row
    }

    /// Operator control: `Some(forced)` forces a state until `force(now, None)` resets the
    /// breaker to CLOSED with cleared counts.
    pub fn force(&mut self, now: Nanos, forced: Option<Forced>) -> Option<Transition> {
        let before = (self.forced, self.state);
        self.forced = forced;
        self.local_episode = false;
        let (to, reason) = match forced {
            Some(Forced::Open) => (State::Open, Reason::ForcedOpen),
            Some(Forced::Closed) => (State::Closed, Reason::ForcedClosed),
            None => (State::Closed, Reason::Reset),
        };
        self.probes.clear();
        self.probe_successes = 0;
        if to == State::Closed {
            self.close(now);
        }
        if before == (forced, to) && forced.is_some() {
            return None;
        }
        Some(self.transition(to, reason, None))
    }

    fn take_lease(&mut self, ticket: Ticket, lease: u64) -> bool {
        if ticket.generation != self.generation {
            return false;
        }
        match self.probes.iter().position(|l| l.id == lease) {
            Some(i) => {
                self.probes.swap_remove(i);
                true
            }
            None => false,
        }
    }

    fn close(&mut self, now: Nanos) {
        // Leases are only ever live in the current generation: a lease id found in `probes`
        // needs no generation check.
        self.probes.clear();
        self.probe_successes = 0;
        self.opens_in_row = 0;
        self.local_episode = false;
        self.failures.clear();
        self.rate_failures = [(0, 0); RATE_BUCKETS as usize];
        self.window_floor = rate_epoch(self.cfg.window, now);
    }

    fn open(&mut self, now: Nanos, reason: Reason) -> Transition {
        let d = self.open_duration();
        self.open_until = now.saturating_add(dur_nanos(d));
        self.failures.clear();
        self.rate_failures = [(0, 0); RATE_BUCKETS as usize];
        self.probes.clear();
        self.probe_successes = 0;
        self.transition(State::Open, reason, Some(d))
    }

    /// `open_for` doubled for each consecutive opening, capped at `max_open_for`; from the second
    /// opening on, up to a tenth is taken off at random so a fleet does not probe in lockstep.
    fn open_duration(&mut self) -> Duration {
        let base = dur_nanos(self.cfg.open_for);
        let max = dur_nanos(self.cfg.max_open_for);
        let doublings = self.opens_in_row.saturating_sub(1).min(63);
        let d = base.saturating_mul(1u64 << doublings).min(max);
        if self.opens_in_row <= 1 || d < 10 {
            return nanos_dur(d);
        }
        let jitter = self.next_random() % (d / 10).max(1);
        nanos_dur(d - jitter.min(d - 1))
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: enough to spread probe times; not for anything secret.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn transition(&mut self, to: State, reason: Reason, open_for: Option<Duration>) -> Transition {
        let from = self.state;
        self.state = to;
        self.generation += 1;
        Transition {
            from,
            to,
            reason,
            generation: self.generation,
            open_for,
        }
    }
}

/// Whether bucket `e` is inside the rate window ending at epoch `now` and not before `floor`.
#[must_use]
pub fn in_rate_window(e: u64, now: u64, floor: u64) -> bool {
    e <= now && now - e < RATE_BUCKETS && e >= floor
}

pub(crate) fn dur_nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn nanos_dur(n: Nanos) -> Duration {
    Duration::from_nanos(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn cfg() -> Config {
        Config::new()
            .threshold(3)
            .window(Duration::from_secs(10))
            .open_for(Duration::from_secs(5))
    }

    fn call(m: &mut Machine, now: Nanos) -> Ticket {
        match m.acquire(now).0 {
            Admit::Call { generation } => Ticket {
                generation,
                lease: None,
            },
            Admit::Probe { generation, lease } => Ticket {
                generation,
                lease: Some(lease),
            },
            Admit::Reject { .. } => panic!("rejected at {now}"),
        }
    }

    #[test]
    fn threshold_inside_window_opens() {
        let mut m = Machine::new(cfg(), 1);
        for i in 0..2 {
            let t = call(&mut m, i * S);
            assert!(m.on_failure(i * S, t, 0).is_none());
        }
        let t = call(&mut m, 2 * S);
        let tr = m.on_failure(2 * S, t, 0).unwrap();
        assert_eq!((tr.from, tr.to), (State::Closed, State::Open));
        assert_eq!(tr.reason, Reason::Threshold { failures: 3 });
        assert_eq!(tr.open_for, Some(Duration::from_secs(5)));
    }

    #[test]
    fn window_slides_old_failures_expire() {
        let mut m = Machine::new(cfg(), 1);
        for at in [0, 5 * S, 10 * S, 15 * S] {
            let t = call(&mut m, at);
            assert!(m.on_failure(at, t, 0).is_none(), "at {at}");
        }
        assert_eq!(m.failures_in_window(15 * S), 2);
    }

    #[test]
    fn half_open_after_open_for_then_probe_closes() {
        let mut m = Machine::new(cfg().threshold(1), 1);
        let t = call(&mut m, 0);
        m.on_failure(0, t, 0).unwrap();
        assert!(matches!(m.acquire(4 * S).0, Admit::Reject { .. }));
        let (admit, tr) = m.acquire(5 * S);
        assert_eq!(tr.unwrap().to, State::HalfOpen);
        let Admit::Probe { generation, lease } = admit else {
            panic!("{admit:?}")
        };
        assert!(matches!(m.acquire(5 * S).0, Admit::Reject { .. }));
        let tr = m
            .on_success(
                5 * S,
                Ticket {
                    generation,
                    lease: Some(lease),
                },
            )
            .unwrap();
        assert_eq!((tr.from, tr.to), (State::HalfOpen, State::Closed));
    }

    #[test]
    fn reopen_doubles_with_jitter_up_to_max() {
        let c = cfg()
            .threshold(1)
            .open_for(Duration::from_secs(10))
            .max_open_for(Duration::from_secs(35));
        let mut m = Machine::new(c, 7);
        let t = call(&mut m, 0);
        let mut now = 0;
        let mut d = m.on_failure(now, t, 0).unwrap().open_for.unwrap();
        assert_eq!(d, Duration::from_secs(10));
        for expected in [20u64, 35, 35] {
            now += dur_nanos(d);
            let t = call(&mut m, now);
            d = m.on_failure(now, t, 0).unwrap().open_for.unwrap();
            assert!(d <= Duration::from_secs(expected), "{d:?}");
            assert!(d > Duration::from_secs(expected) * 9 / 10, "{d:?}");
        }
    }

    #[test]
    fn expired_lease_reopens_and_the_late_report_is_ignored() {
        let c = cfg().threshold(1).timeout(Duration::from_secs(2));
        let mut m = Machine::new(c, 1);
        let t = call(&mut m, 0);
        m.on_failure(0, t, 0);
        let hung = call(&mut m, 5 * S);
        assert!(matches!(m.acquire(6 * S).0, Admit::Reject { .. }));
        // The lease (the 2 s timeout) ran out: a failed probe, open for twice as long.
        let (admit, tr) = m.acquire(7 * S);
        let tr = tr.unwrap();
        assert_eq!(
            (tr.from, tr.to, tr.reason),
            (State::HalfOpen, State::Open, Reason::ProbeExpired)
        );
        // Capped at max_open_for (= open_for, 5 s here), less up to 10 % jitter.
        assert!(tr.open_for.unwrap() >= Duration::from_millis(4500));
        assert!(matches!(admit, Admit::Reject { .. }));
        assert!(m.on_failure(8 * S, hung, 0).is_none());
        assert!(m.on_success(8 * S, hung).is_none());
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn rate_rule_needs_min_calls() {
        let c = cfg().threshold(1000).failure_rate(50).min_calls(10);
        let mut m = Machine::new(c, 1);
        for i in 0..4 {
            let t = call(&mut m, i);
            assert!(m.on_failure(i, t, 4).is_none());
        }
        let t = call(&mut m, 5);
        let tr = m.on_failure(5, t, 5).unwrap();
        assert_eq!(
            tr.reason,
            Reason::FailureRate {
                failures: 5,
                calls: 10
            }
        );
    }

    #[test]
    fn forced_states_hold_until_reset() {
        let mut m = Machine::new(cfg().threshold(1), 1);
        m.force(0, Some(Forced::Open));
        assert_eq!(m.acquire(1_000 * S).0, Admit::Reject { retry_after: None });
        m.force(0, Some(Forced::Closed));
        for i in 0..10 {
            let t = call(&mut m, i);
            assert!(m.on_failure(i, t, 0).is_none());
        }
        let tr = m.force(20, None).unwrap();
        assert_eq!(tr.reason, Reason::Reset);
        let t = call(&mut m, 30);
        assert_eq!(m.on_failure(30, t, 0).unwrap().to, State::Open);
    }

    #[test]
    fn late_failure_from_previous_generation_does_not_trip() {
        let mut m = Machine::new(cfg().threshold(1), 1);
        let old = call(&mut m, 0);
        m.force(0, Some(Forced::Open));
        m.force(1, None);
        assert!(m.on_failure(2, old, 0).is_none());
        assert_eq!(m.state(), State::Closed);
    }

    #[test]
    fn fleet_news_older_than_what_was_applied_is_ignored() {
        let mut m = Machine::new(cfg(), 1);
        let open = FleetState {
            state: State::Open,
            forced: None,
            remaining: Duration::from_secs(5),
            opens_in_row: 1,
            reset: false,
        };
        let closed = FleetState {
            state: State::Closed,
            remaining: Duration::ZERO,
            ..open
        };
        assert_eq!(m.apply_fleet(0, open, 7, false).unwrap().to, State::Open);
        assert!(
            m.apply_fleet(0, closed, 6, false).is_none(),
            "stale news applied"
        );
        assert_eq!(m.state(), State::Open);
        // A reply that has not counted this instance's latest failures does not close it.
        assert!(m.apply_fleet(0, closed, 8, true).is_none());
        assert_eq!(
            m.apply_fleet(0, closed, 9, false).unwrap().to,
            State::Closed
        );
    }

    #[test]
    fn fleet_reset_of_a_forced_breaker_applies_the_fleet_state() {
        let mut m = Machine::new(cfg(), 1);
        m.force(0, Some(Forced::Open));
        let open = FleetState {
            state: State::Open,
            forced: None,
            remaining: Duration::from_secs(5),
            opens_in_row: 1,
            reset: false,
        };
        m.apply_fleet(0, open, 3, false);
        assert_eq!(m.forced(), None);
        assert_eq!(m.state(), State::Open);
        assert_eq!(m.open_until(), 5 * S);
    }

    fn fleet(state: State, remaining: Duration) -> FleetState {
        FleetState {
            state,
            forced: None,
            remaining,
            opens_in_row: u32::from(state == State::Open),
            reset: false,
        }
    }

    /// The sick instance of a healthy fleet: its flush reply says CLOSED at once.
    #[test]
    fn an_own_trip_holds_its_open_period_whatever_the_fleet_counts() {
        let mut m = Machine::new(cfg().threshold(2), 1);
        m.set_fleet_probes(true);
        for i in 0..2 {
            let t = call(&mut m, i);
            m.on_failure(i, t, 0);
        }
        assert_eq!(m.state(), State::Open);
        assert!(m.local_episode());
        let closed = fleet(State::Closed, Duration::ZERO);
        assert!(m.apply_fleet(S, closed, 1, false).is_none());
        assert!(
            m.apply_fleet(S, fleet(State::HalfOpen, Duration::ZERO), 2, false)
                .is_none()
        );
        assert_eq!(m.state(), State::Open);
        assert!(matches!(m.acquire(4 * S).0, Admit::Reject { .. }));
        // Its own period over, it probes on its own (the fleet is not probing) and a success
        // closes it here.
        let (admit, _) = m.acquire(6 * S);
        let Admit::Probe { generation, lease } = admit else {
            panic!("{admit:?}")
        };
        assert!(!m.probes_judged_by_fleet());
        let tr = m.on_success(
            6 * S,
            Ticket {
                generation,
                lease: Some(lease),
            },
        );
        assert_eq!(tr.unwrap().to, State::Closed);
        assert!(!m.local_episode());
        // What a store that lost its data would be told: what the fleet said last (HALF_OPEN),
        // never the own trip.
        assert_eq!(m.fleet_view(6 * S).0, State::HalfOpen);
        let mut m = Machine::new(cfg().threshold(1), 1);
        m.set_fleet_probes(true);
        let t = call(&mut m, 0);
        m.on_failure(0, t, 0);
        assert_eq!(m.state(), State::Open);
        assert_eq!(m.fleet_view(S), (State::Closed, Duration::ZERO));
    }

    #[test]
    fn the_fleet_opening_or_an_operator_ends_an_own_episode() {
        let mut m = Machine::new(cfg().threshold(1), 1);
        m.set_fleet_probes(true);
        let t = call(&mut m, 0);
        m.on_failure(0, t, 0);
        let own_until = m.open_until();
        // The fleet opens for longer: the stricter (later) end applies, probes are the fleet's.
        assert!(
            m.apply_fleet(S, fleet(State::Open, Duration::from_secs(5)), 1, false)
                .is_none()
        );
        assert_eq!(m.open_until(), 6 * S);
        assert!(m.open_until() > own_until);
        assert!(m.probes_judged_by_fleet());
        // Shorter fleet news never shortens what is known.
        m.apply_fleet(2 * S, fleet(State::Open, Duration::from_secs(1)), 2, false);
        assert_eq!(m.open_until(), 6 * S);
        // An operator's reset closes an own episode at once.
        let mut m = Machine::new(cfg().threshold(1), 1);
        m.set_fleet_probes(true);
        let t = call(&mut m, 0);
        m.on_failure(0, t, 0);
        let reset = FleetState {
            reset: true,
            ..fleet(State::Closed, Duration::ZERO)
        };
        let tr = m.apply_fleet(S, reset, 1, false).unwrap();
        assert_eq!((tr.to, tr.reason), (State::Closed, Reason::Reset));
        assert!(!m.local_episode());
    }

    #[test]
    fn an_absurd_open_period_from_the_store_is_clamped_to_max_open_for() {
        let mut m = Machine::new(cfg(), 1);
        let forever = fleet(State::Open, Duration::from_secs(1_000_000));
        let tr = m.apply_fleet(0, forever, 1, false).unwrap();
        assert_eq!(tr.open_for, Some(m.config().max_open_for));
        assert_eq!(m.open_until(), dur_nanos(m.config().max_open_for));
    }
}
