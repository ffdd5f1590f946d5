//! Property test: the state machine against a small reference model written from the
//! specification, over random sequences of calls, outcomes, cancellations, operator commands
//! and the passage of time.

use std::collections::BTreeMap;
use std::time::Duration;

use breaker_runtime::Config;
use breaker_runtime::machine::{Admit, Forced, Machine, Nanos, State, Ticket};
use proptest::prelude::*;

const MS: u64 = 1_000_000;

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Call,
    Succeed(usize),
    Fail(usize),
    Cancel(usize),
    Force(Option<Forced>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3_000u64).prop_map(|ms| Op::Advance(ms * MS)),
        // Whole seconds, so window and open boundaries are hit exactly.
        2 => (0..8u64).prop_map(|s| Op::Advance(s * 1_000 * MS)),
        4 => Just(Op::Call),
        3 => any::<usize>().prop_map(Op::Succeed),
        4 => any::<usize>().prop_map(Op::Fail),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => prop_oneof![
            Just(Op::Force(Some(Forced::Open))),
            Just(Op::Force(Some(Forced::Closed))),
            Just(Op::Force(None)),
        ],
    ]
}

/// The specification, written plainly: every failure timestamp is kept, leases in a map.
#[derive(Debug)]
struct Model {
    cfg: Config,
    state: State,
    forced: Option<Forced>,
    generation: u64,
    open_until: Nanos,
    opens_in_row: u32,
    failures: Vec<Nanos>,
    leases: BTreeMap<u64, Nanos>,
    next_lease: u64,
    probe_successes: u32,
    /// Set when `tick` re-opened: the machine's jittered deadline is adopted after the step.
    expired_open: bool,
}

impl Model {
    fn new(cfg: Config) -> Self {
        Model {
            cfg,
            state: State::Closed,
            forced: None,
            generation: 0,
            open_until: 0,
            opens_in_row: 0,
            failures: Vec::new(),
            leases: BTreeMap::new(),
            next_lease: 1,
            probe_successes: 0,
            expired_open: false,
        }
    }

    fn window(&self) -> u64 {
        self.cfg.window.as_nanos() as u64
    }

    fn go(&mut self, to: State) {
        self.state = to;
        self.generation += 1;
    }

    fn tick(&mut self, now: Nanos) {
        if self.state == State::Open && self.forced.is_none() && now >= self.open_until {
            self.leases.clear();
            self.probe_successes = 0;
            self.go(State::HalfOpen);
        }
        // Spec: a probe silent past its lease is a failed probe.
        if self.state == State::HalfOpen
            && self.forced.is_none()
            && self.leases.values().any(|until| *until <= now)
        {
            self.opens_in_row += 1;
            self.open(now);
            self.expired_open = true;
        }
    }

    fn acquire(&mut self, now: Nanos) -> Admit {
        self.tick(now);
        match (self.forced, self.state) {
            (Some(Forced::Open), _) => Admit::Reject { retry_after: None },
            (Some(_), _) | (None, State::Closed) => Admit::Call {
                generation: self.generation,
            },
            (None, State::HalfOpen) if self.leases.len() < self.cfg.half_open_probes as usize => {
                let id = self.next_lease;
                self.next_lease += 1;
                self.leases
                    .insert(id, now + self.cfg.probe_lease().as_nanos() as u64);
                Admit::Probe {
                    generation: self.generation,
                    lease: id,
                }
            }
            _ => Admit::Reject {
                retry_after: Some(Duration::ZERO),
            },
        }
    }

    /// Nominal open period (before jitter) for the current `opens_in_row`.
    fn nominal_open(&self) -> u64 {
        let base = self.cfg.open_for.as_nanos() as u64;
        let max = self.cfg.max_open_for.as_nanos() as u64;
        let mut d = base;
        for _ in 1..self.opens_in_row {
            d = d.saturating_mul(2).min(max);
        }
        d.min(max)
    }

    fn open(&mut self, now: Nanos) {
        self.failures.clear();
        self.leases.clear();
        self.probe_successes = 0;
        self.open_until = now + self.nominal_open();
        self.go(State::Open);
    }

    fn close(&mut self) {
        self.leases.clear();
        self.probe_successes = 0;
        self.failures.clear();
        self.opens_in_row = 0;
    }

    fn fail(&mut self, now: Nanos, t: Ticket) {
        if self.forced.is_some() || t.generation != self.generation {
            return;
        }
        if let Some(lease) = t.lease {
            if self.state == State::HalfOpen && self.leases.remove(&lease).is_some() {
                self.opens_in_row += 1;
                self.open(now);
            }
            return;
        }
        if self.state != State::Closed {
            return;
        }
        self.failures.push(now);
        if self.in_window(now) >= self.cfg.threshold as usize {
            self.opens_in_row = 1;
            self.open(now);
        }
    }

    fn succeed(&mut self, t: Ticket) {
        let Some(lease) = t.lease else { return };
        if t.generation != self.generation || self.leases.remove(&lease).is_none() {
            return;
        }
        self.probe_successes += 1;
        if self.probe_successes >= self.cfg.half_open_probes {
            self.close();
            self.go(State::Closed);
        }
    }

    fn cancel(&mut self, t: Ticket) {
        if let Some(lease) = t.lease
            && t.generation == self.generation
        {
            self.leases.remove(&lease);
        }
    }

    fn force(&mut self, forced: Option<Forced>) {
        let before = (self.forced, self.state);
        self.forced = forced;
        self.leases.clear();
        self.probe_successes = 0;
        let to = if forced == Some(Forced::Open) {
            State::Open
        } else {
            self.close();
            State::Closed
        };
        if before == (forced, to) && forced.is_some() {
            return;
        }
        self.go(to);
    }

    fn in_window(&self, now: Nanos) -> usize {
        let w = self.window();
        self.failures.iter().filter(|&&t| t + w > now).count()
    }
}

fn kind(a: &Admit) -> u8 {
    match a {
        Admit::Call { .. } => 0,
        Admit::Probe { .. } => 1,
        Admit::Reject { .. } => 2,
    }
}

fn ticket(a: &Admit) -> Option<Ticket> {
    match *a {
        Admit::Call { generation } => Some(Ticket {
            generation,
            lease: None,
        }),
        Admit::Probe { generation, lease } => Some(Ticket {
            generation,
            lease: Some(lease),
        }),
        Admit::Reject { .. } => None,
    }
}

fn config() -> impl Strategy<Value = Config> {
    (
        1..5u32,
        1..20u64,
        1..10u64,
        1..4u64,
        1..4u32,
        proptest::option::of(1..5u64),
    )
        .prop_map(
            |(threshold, window_s, open_s, max_mult, probes, timeout_s)| {
                let mut c = Config::new()
                    .threshold(threshold)
                    .window(Duration::from_secs(window_s))
                    .open_for(Duration::from_secs(open_s))
                    .max_open_for(Duration::from_secs(open_s * max_mult))
                    .half_open_probes(probes);
                if let Some(t) = timeout_s {
                    c = c.timeout(Duration::from_secs(t));
                }
                c
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn machine_matches_the_model(cfg in config(), seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..200)) {
        let mut m = Machine::new(cfg, seed);
        let mut model = Model::new(cfg);
        let mut now: Nanos = 0;
        let mut pending: Vec<Ticket> = Vec::new();
        for op in ops {
            match op {
                Op::Advance(d) => now += d,
                Op::Call => {
                    let (got, tr) = m.acquire(now);
                    let want = model.acquire(now);
                    if std::mem::take(&mut model.expired_open) {
                        prop_assert!(tr.is_some_and(|t| t.to == State::Open || t.to == State::HalfOpen));
                        model.open_until = m.open_until();
                    }
                    prop_assert_eq!(kind(&got), kind(&want), "admission at {} after {:?}", now, model);
                    if let Admit::Reject { retry_after } = got {
                        prop_assert_eq!(retry_after.is_none(), model.forced == Some(Forced::Open));
                    }
                    pending.extend(ticket(&got));
                }
                Op::Succeed(i) | Op::Fail(i) | Op::Cancel(i) if !pending.is_empty() => {
                    let t = pending.remove(i % pending.len());
                    match op {
                        Op::Succeed(_) => {
                            m.on_success(now, t);
                            model.succeed(t);
                        }
                        Op::Fail(_) => {
                            let tr = m.on_failure(now, t, 0);
                            model.fail(now, t);
                            if let Some(tr) = tr.filter(|tr| tr.to == State::Open) {
                                // Jitter takes up to a tenth off from the second opening on.
                                let got = tr.open_for.unwrap().as_nanos() as u64;
                                let nominal = model.nominal_open();
                                prop_assert!(got <= nominal && got >= nominal - nominal / 10,
                                    "open for {} vs nominal {}", got, nominal);
                                model.open_until = m.open_until();
                            }
                        }
                        _ => {
                            m.on_cancel(t);
                            model.cancel(t);
                        }
                    }
                }
                Op::Succeed(_) | Op::Fail(_) | Op::Cancel(_) => {}
                Op::Force(f) => {
                    m.force(now, f);
                    model.force(f);
                }
            }
            prop_assert_eq!(m.state(), model.state);
            prop_assert_eq!(m.forced(), model.forced);
            prop_assert_eq!(m.generation(), model.generation);
            prop_assert_eq!(m.failures_in_window(now), model.in_window(now).min(cfg.threshold as usize));
            prop_assert!(m.probes_in_flight() <= cfg.half_open_probes as usize);
        }
    }
}
