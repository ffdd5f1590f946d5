//! Breakers made in code: [`Breaker::builder`] for a breaker whose name or settings are known
//! only at run time, and [`Handle::call`] / [`Handle::call_with_fallback`], which run a call
//! through any breaker (built here or declared with `#[circuit_breaker]`) with the semantics of
//! the attribute.
//!
//! A built breaker is an ordinary registry entry: listed by [`breakers`](crate::breakers), seen
//! by the console and `breakerctl`, given `BREAKER_OVERRIDES` and `BREAKER_FAULTS`, and kept in
//! memory or in Redis as its `store` says.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::breaker::Breaker;
use crate::breaker::contract::{BreakerResult, FromBreakerError, is_err, reject};
use crate::breaker::future::MaybeTimeout;
use crate::core::config::{Config, ConfigError, Mode, StoreKind, check_name};
use crate::core::error::BreakerError;
use crate::notify::FallbackReason;
use crate::runtime::handle::Handle;
use crate::runtime::registry;

/// Settings for a breaker made in code; [`BreakerBuilder::build`] registers it. Every method is
/// an argument of `#[circuit_breaker]`, with the same default and the same rules.
///
/// ```
/// use std::time::Duration;
/// use breaker_runtime::{Breaker, BreakerError};
///
/// # #[derive(Debug)] enum MyError { Breaker(BreakerError) }
/// # impl From<BreakerError> for MyError { fn from(e: BreakerError) -> Self { MyError::Breaker(e) } }
/// # impl std::fmt::Display for MyError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
/// # async fn example() -> Result<(), breaker_runtime::ConfigError> {
/// let tenant = "acme";
/// let breaker = Breaker::builder(format!("billing.{tenant}"))
///     .threshold(5)
///     .timeout(Duration::from_secs(3))
///     .open_for(Duration::from_secs(30))
///     .build()?;
/// let answer: Result<u32, MyError> = breaker.call(|| async { Ok(42) }).await;
/// assert_eq!(answer.ok(), Some(42));
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(example()).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build()`"]
pub struct BreakerBuilder {
    name: String,
    config: Config,
    /// The first `set` that failed: reported by `build`.
    error: Option<ConfigError>,
    fallback: Option<String>,
}

impl Breaker {
    /// Starts a breaker made in code, named `name` (the rules of the attribute's `name`: not
    /// empty, at most 200 characters, no whitespace, control characters, `{` or `}`).
    pub fn builder(name: impl Into<String>) -> BreakerBuilder {
        BreakerBuilder {
            name: name.into(),
            config: Config::new(),
            error: None,
            fallback: None,
        }
    }
}

impl BreakerBuilder {
    /// `timeout`: a call still running after this long is abandoned and counted as a failure.
    pub fn timeout(mut self, after: Duration) -> Self {
        self.config = self.config.timeout(after);
        self
    }

    /// `threshold`: failures within `window` that open the breaker (default 5).
    pub fn threshold(mut self, failures: u32) -> Self {
        self.config = self.config.threshold(failures);
        self
    }

    /// `window`: the time window failures are counted in (default 60 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.config = self.config.window(window);
        self
    }

    /// `failure_rate`: open when this percentage of calls in `window` failed (with `min_calls`).
    pub fn failure_rate(mut self, percent: u8) -> Self {
        self.config = self.config.failure_rate(percent);
        self
    }

    /// `min_calls`: calls in `window` before `failure_rate` is judged.
    pub fn min_calls(mut self, calls: u32) -> Self {
        self.config = self.config.min_calls(calls);
        self
    }

    /// `slow_call`: a success slower than this counts as a failure.
    pub fn slow_call(mut self, limit: Duration) -> Self {
        self.config = self.config.slow_call(limit);
        self
    }

    /// `open_for`: how long the breaker stays OPEN before probing (default 30 s).
    pub fn open_for(mut self, d: Duration) -> Self {
        self.config = self.config.open_for(d);
        self
    }

    /// `max_open_for`: the longest OPEN after repeated failed probes.
    pub fn max_open_for(mut self, d: Duration) -> Self {
        self.config = self.config.max_open_for(d);
        self
    }

    /// `half_open_probes`: calls let through in HALF_OPEN (default 1).
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.config = self.config.half_open_probes(probes);
        self
    }

    /// `quorum`: instances that must see failures before a fleet opens (Redis store).
    pub fn quorum(mut self, instances: u32) -> Self {
        self.config = self.config.quorum(instances);
        self
    }

    /// `max_concurrent`: a bulkhead; at most this many calls in flight in this instance, the
    /// next rejected with `BreakerError::Full` (or served by the fallback).
    pub fn max_concurrent(mut self, calls: u32) -> Self {
        self.config = self.config.max_concurrent(calls);
        self
    }

    /// `max_wait`: with `max_concurrent`, how long a call may wait for a place.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.config = self.config.max_wait(wait);
        self
    }

    /// `mode`: [`Mode::Shadow`] counts, opens and alerts but never rejects a call or serves
    /// the fallback (to see what the breaker would do on a live service); [`Mode::Enforce`]
    /// (the default) acts. An operator can switch it later ([`Handle::set_shadow`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.config = self.config.mode(mode);
        self
    }

    /// `store`: memory (the default) or Redis.
    pub fn store(mut self, store: StoreKind) -> Self {
        self.config = self.config.store(store);
        self
    }

    /// `fallback`: names the fallback its calls run ([`Handle::call_with_fallback`]), for the
    /// console and `breakerctl`, and lets an operator swap the breaker (the fallback called
    /// first). Without it, `breakerctl swap` refuses this breaker, as it refuses a function
    /// declared without a fallback.
    pub fn fallback(mut self, name: impl Into<String>) -> Self {
        self.fallback = Some(name.into());
        self
    }

    /// A setting in its text form, as `BREAKER_OVERRIDES` writes it (`"timeout", "3s"`): for
    /// settings read from a file. An unknown key or a value that does not parse is reported by
    /// [`build`](Self::build), with the same error the environment override gets.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        if self.error.is_none()
            && let Err(e) = self.config.assign(key, value)
        {
            self.error = Some(e);
        }
        self
    }

    /// Checks the settings and registers the breaker (or returns the one already registered
    /// under this name with the same settings: building twice is harmless). `BREAKER_OVERRIDES`
    /// for this name apply on top, as for a declared breaker.
    ///
    /// # Errors
    /// A setting the attribute would refuse at compile time (the same [`ConfigError`] the
    /// environment override gets), an invalid name (setting `name`), or a breaker of this name
    /// that exists with other settings (setting `name`; one name is one breaker).
    pub fn build(self) -> Result<Handle, ConfigError> {
        if let Err(e) = check_name(&self.name) {
            return Err(ConfigError::new("name", e.to_string()));
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        self.config.validate()?;
        registry::get_or_create_built(&self.name, self.config, self.fallback)
            .map(|breaker| Handle { breaker })
    }
}

/// How a built call describes an error in alerts.
fn describe<E: fmt::Display>(e: &E, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "{e}");
}

impl Handle {
    /// Runs `call` through this breaker, as a `#[circuit_breaker]` function without a fallback
    /// runs its body: admitted or rejected first (a rejection returns
    /// `Err(BreakerError::Open { .. })` converted into the call's error type), abandoned after
    /// the breaker's `timeout` (`Err(BreakerError::Timeout { .. })`), its result counted (every
    /// `Err` is a failure). `call` is invoked only when the call is admitted.
    ///
    /// Unlike a declared function, a call made here always honours a `timeout` set by
    /// `BREAKER_OVERRIDES`, and an injected `delay` runs inside it.
    pub async fn call<R, F, Fut>(&self, call: F) -> R
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
        R: BreakerResult,
        R::Error: FromBreakerError + fmt::Display,
    {
        let judged = self
            .call_judged(call, |r: &R| r.err_ref().map(ToString::to_string))
            .await;
        match judged {
            Ok(result) => result,
            Err(e) => reject(e),
        }
    }

    /// As [`Handle::call`], with `failure_if` saying which errors are failures, as the
    /// attribute's `failure_if = ..` does: an error it does not count is returned as it is and
    /// counted as a success (a "not found" is an answer, not an outage).
    ///
    /// ```no_run
    /// # async fn demo(h: breaker_runtime::Handle) {
    /// # #[derive(Debug)] enum E { NotFound, Down, Breaker(breaker_runtime::BreakerError) }
    /// # impl std::fmt::Display for E { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
    /// # impl From<breaker_runtime::BreakerError> for E { fn from(e: breaker_runtime::BreakerError) -> Self { E::Breaker(e) } }
    /// let found: Result<u32, E> = h
    ///     .call_with_failure_if(|| async { Err(E::NotFound) }, |e| matches!(e, E::Down))
    ///     .await;
    /// # }
    /// ```
    pub async fn call_with_failure_if<R, F, Fut, P>(&self, call: F, failure_if: P) -> R
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
        R: BreakerResult,
        R::Error: FromBreakerError + fmt::Display,
        P: FnOnce(&R::Error) -> bool,
    {
        let judged = self
            .call_judged(call, |r: &R| {
                r.err_ref()
                    .filter(|e| failure_if(e))
                    .map(ToString::to_string)
            })
            .await;
        match judged {
            Ok(result) => result,
            Err(e) => reject(e),
        }
    }

    /// Runs `call` through this breaker with `fallback` behind it, as a `#[circuit_breaker]`
    /// function with `fallback = ..`: the fallback answers a rejection, a failure and a timeout;
    /// while an operator has the breaker swapped, the fallback is called first and `call` only
    /// if the fallback fails. Each is invoked at most once.
    pub async fn call_with_fallback<R, F, Fut, G, GFut>(&self, call: F, fallback: G) -> R
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
        G: FnOnce() -> GFut,
        GFut: Future<Output = R>,
        R: BreakerResult,
        R::Error: fmt::Display,
    {
        let b = self.breaker;
        let permit = match b.admit() {
            Ok(p) => p,
            Err(r) if r.is_swapped() => return swapped(b, call, fallback).await,
            Err(r) => match b.wait_for_probe(r).await {
                Ok(p) => p,
                Err(r) => {
                    b.note_fallback_for(r);
                    return serve_fallback(b, fallback).await;
                }
            },
        };
        let started = b.started();
        let mut permit = permit;
        match MaybeTimeout::new(call(), &mut permit).await {
            Some(result) => {
                if permit.settle(&result, None, started, describe::<R::Error>) {
                    drop(result);
                    b.note_fallback(FallbackReason::Failed);
                    serve_fallback(b, fallback).await
                } else {
                    result
                }
            }
            None => {
                let _ = permit.timed_out();
                b.note_fallback(FallbackReason::TimedOut);
                serve_fallback(b, fallback).await
            }
        }
    }
}

impl Handle {
    /// Runs `call` through this breaker with `judge` saying whether its result is a failure
    /// (`Some(what went wrong)`, for alerts; for the tower layer and the reqwest middleware an
    /// `Ok` HTTP 503 may be one). The call's own result, or the breaker's error when it was
    /// rejected or timed out. [`Handle::call`] is this with every `Err` a failure.
    pub(crate) async fn call_judged<R, F, Fut, J>(
        &self,
        call: F,
        judge: J,
    ) -> Result<R, BreakerError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
        J: FnOnce(&R) -> Option<String>,
    {
        let b = self.breaker;
        let permit = match b.admit() {
            Ok(p) => p,
            Err(r) => {
                // Swapped (a declared breaker with a fallback, called here without one): the
                // call is tried at once, once it has a place.
                let r = if r.is_swapped() {
                    match b.admit_primary() {
                        Ok(p) => Ok(p),
                        Err(r) if r.is_await() => b.wait_for_probe(r).await,
                        Err(r) => Err(r),
                    }
                } else {
                    b.wait_for_probe(r).await
                };
                match r {
                    Ok(p) => p,
                    Err(r) => return Err(b.rejection(r)),
                }
            }
        };
        let started = b.started();
        let mut permit = permit;
        match MaybeTimeout::new(call(), &mut permit).await {
            Some(result) => {
                let verdict: Result<(), String> = judge(&result).map_or(Ok(()), Err);
                let _ = permit.settle(&verdict, None, started, describe::<String>);
                Ok(result)
            }
            None => Err(permit.timed_out()),
        }
    }
}

impl BreakerBuilder {
    /// The same settings under another name (the reqwest middleware's breaker per host).
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn renamed(&self, name: String) -> BreakerBuilder {
        BreakerBuilder {
            name,
            ..self.clone()
        }
    }

    /// The name given to [`Breaker::builder`].
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The fallback's answer, counted (an error there means the whole chain failed).
async fn serve_fallback<R, G, GFut>(b: &'static Breaker, fallback: G) -> R
where
    G: FnOnce() -> GFut,
    GFut: Future<Output = R>,
    R: BreakerResult,
    R::Error: fmt::Display,
{
    let answer = fallback().await;
    b.fallback_result(&answer, describe::<R::Error>);
    answer
}

/// A swapped breaker: the fallback first, then the call through the breaker if the fallback
/// failed; the call's answer is the last word (the fallback's if the call is rejected or times
/// out).
async fn swapped<R, F, Fut, G, GFut>(b: &'static Breaker, call: F, fallback: G) -> R
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
    G: FnOnce() -> GFut,
    GFut: Future<Output = R>,
    R: BreakerResult,
    R::Error: fmt::Display,
{
    b.note_fallback(FallbackReason::Swapped);
    let first = fallback().await;
    if !is_err(&first) {
        b.fallback_result(&first, describe::<R::Error>);
        return first;
    }
    let admitted = match b.admit_primary() {
        Err(r) if r.is_await() => b.wait_for_probe(r).await,
        other => other,
    };
    let Ok(permit) = admitted else {
        b.fallback_result(&first, describe::<R::Error>);
        return first;
    };
    let started = b.started();
    let mut permit = permit;
    match MaybeTimeout::new(call(), &mut permit).await {
        Some(result) => {
            let _ = permit.settle(&result, None, started, describe::<R::Error>);
            drop(first);
            b.fallback_result(&result, describe::<R::Error>);
            result
        }
        None => {
            let _ = permit.timed_out();
            b.fallback_result(&first, describe::<R::Error>);
            first
        }
    }
}
