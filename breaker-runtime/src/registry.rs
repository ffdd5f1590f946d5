//! The process-wide registry of breakers, their handles, and the runtime settings (clock,
//! notifiers, stores, overrides) fixed before the first breaker is created.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::breaker::{Breaker, CounterSnapshot};
use crate::clock::{Clock, TokioClock};
use crate::config::{Config, ConfigError, StoreKind};
use crate::fault::{ENV_FAULTS, Fault, parse_fault_list};
use crate::machine::{Forced, State};
use crate::notifier::{self, EventKind, Notifier};
use crate::store::{Command, Control, MemoryStore, Store, StoreError};

/// Environment variable with per-breaker configuration overrides:
/// `BREAKER_OVERRIDES="daum.threshold=10,daum.open_for=1m"`.
pub const ENV_OVERRIDES: &str = "BREAKER_OVERRIDES";

/// A handle to one breaker, from [`breaker`] or [`breakers`]. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Handle {
    breaker: &'static Breaker,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.name())
            .field("state", &self.breaker.published_state())
            .field("forced", &self.forced())
            .finish()
    }
}

impl Handle {
    /// The breaker's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.breaker.name()
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> Config {
        *self.breaker.config()
    }

    /// The current state (an OPEN breaker whose open period is over reports HALF_OPEN).
    #[must_use]
    pub fn state(&self) -> State {
        self.breaker.state()
    }

    /// The operator's forced state, if any.
    #[must_use]
    pub fn forced(&self) -> Option<Forced> {
        self.breaker.forced()
    }

    /// Time until an OPEN breaker lets a probe through (`None` unless OPEN and not forced).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.breaker.retry_after()
    }

    /// Failures inside the sliding window now.
    #[must_use]
    pub fn failures_in_window(&self) -> usize {
        self.breaker.failures_in_window()
    }

    /// Counters since the process started.
    #[must_use]
    pub fn counters(&self) -> CounterSnapshot {
        self.breaker.counters()
    }

    /// Rejects every call until [`Handle::reset`]; never drifts into HALF_OPEN.
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    pub async fn force_open(&self) -> Result<(), StoreError> {
        self.command(Command::ForceOpen).await
    }

    /// Calls the function whatever fails, never tripping, until [`Handle::reset`].
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    pub async fn force_closed(&self) -> Result<(), StoreError> {
        self.command(Command::ForceClosed).await
    }

    /// Clears any forced state and returns to CLOSED with cleared counts.
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    pub async fn reset(&self) -> Result<(), StoreError> {
        self.command(Command::Reset).await
    }

    /// Swaps the breaker (`true`: its fallback is called first and the function becomes the
    /// fallback's fallback, through this breaker) or restores the order (`false`), on every
    /// instance sharing its store.
    ///
    /// # Errors
    /// When the breaker has no fallback, or its store cannot carry out the command.
    pub async fn swap(&self, swapped: bool) -> Result<(), StoreError> {
        if self.breaker.fallback().is_none() {
            return Err(StoreError::new(format!(
                "breaker `{}` has no fallback to swap with",
                self.name()
            )));
        }
        self.control(Control::Swap(swapped)).await
    }

    /// Injects `fault` (or clears the injected fault with `None`) for `for_` (or until cleared),
    /// on every instance sharing the breaker's store.
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    pub async fn inject(
        &self,
        fault: Option<Fault>,
        for_: Option<Duration>,
    ) -> Result<(), StoreError> {
        if let Some(f) = &fault {
            f.check().map_err(|e| StoreError::new(e.to_string()))?;
        }
        self.control(Control::Fault(fault, for_)).await
    }

    /// Sets the user-facing notice (or clears it with `None`) for `for_` (or until cleared), on
    /// every instance sharing the breaker's store; read it with [`notice`].
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    pub async fn set_notice(
        &self,
        text: Option<String>,
        for_: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.control(Control::Notice(text, for_)).await
    }

    /// Whether the breaker is swapped.
    #[must_use]
    pub fn swapped(&self) -> bool {
        self.breaker.swapped()
    }

    /// The fault injected now, if any.
    #[must_use]
    pub fn fault(&self) -> Option<Fault> {
        self.breaker.fault()
    }

    /// The user-facing notice, if set.
    #[must_use]
    pub fn notice(&self) -> Option<String> {
        self.breaker.notice().map(|n| n.to_string())
    }

    /// The fallback, as written in the attribute.
    #[must_use]
    pub fn fallback(&self) -> Option<&'static str> {
        self.breaker.fallback()
    }

    async fn control(&self, control: Control) -> Result<(), StoreError> {
        settings()
            .store(self.breaker.config().store)
            .control(*self, control)
            .await
    }

    async fn command(&self, command: Command) -> Result<(), StoreError> {
        settings()
            .store(self.breaker.config().store)
            .command(*self, command)
            .await
    }

    /// The breaker itself, for store implementations.
    #[must_use]
    pub fn breaker(&self) -> &'static Breaker {
        self.breaker
    }

    /// Applies a command to this process's breaker only. Stores call this; applications use
    /// [`Handle::force_open`] and friends, which go through the store.
    pub fn apply_local(&self, command: Command) {
        self.breaker.apply(command.forced());
    }
}

/// The user-facing notice an operator set for breaker `name` (`breakerctl notice`), to show
/// users while everything behind it is down; `None` when none is set or the process has no such
/// breaker.
#[must_use]
pub fn notice(name: &str) -> Option<String> {
    breaker(name).and_then(|h| h.notice())
}

/// The breaker named `name`, if this process has one.
///
/// Breakers declared with `#[circuit_breaker]` are known from program start (see [`breakers`]);
/// a method without an explicit `name` is known from its first call, since its name includes
/// its type.
#[must_use]
pub fn breaker(name: &str) -> Option<Handle> {
    crate::__private::register_sites();
    registry().get(name).map(|e| Handle { breaker: e.breaker })
}

/// Every breaker of this process, sorted by name.
#[must_use]
pub fn breakers() -> Vec<Handle> {
    crate::__private::register_sites();
    registry()
        .values()
        .map(|e| Handle { breaker: e.breaker })
        .collect()
}

struct Entry {
    breaker: &'static Breaker,
    declared: Config,
    site: usize,
    explicit: bool,
}

static REGISTRY: Mutex<BTreeMap<&'static str, Entry>> = Mutex::new(BTreeMap::new());

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<&'static str, Entry>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Returns the breaker named `name`, creating it with `declared` (plus overrides) if needed.
/// `site` identifies the declaring function, so two functions sharing a name by accident can be
/// told apart from one function called twice.
pub(crate) fn get_or_create(
    name: &str,
    declared: Config,
    site: usize,
    explicit: bool,
    fallback: Option<&'static str>,
) -> &'static Breaker {
    let settings = settings();
    let mut reg = registry();
    if let Some(e) = reg.get(name) {
        if e.site != site {
            if e.declared != declared {
                tracing::warn!(
                    breaker = name,
                    "two functions declare breaker `{name}` with different settings; the first \
                     declaration's settings apply to both"
                );
            } else if !(e.explicit && explicit) {
                tracing::warn!(
                    breaker = name,
                    "two functions share the default breaker name `{name}`; give them distinct \
                     `name = \"...\"` arguments unless they should share one breaker"
                );
            }
        }
        return e.breaker;
    }
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let mut config = declared;
    for (key, value) in settings.overrides.get(name).into_iter().flatten() {
        let applied = if key == "timeout" && declared.timeout.is_none() {
            Err(ConfigError::new(
                "timeout",
                "can only be overridden for a breaker declared with a `timeout` (the timer is \
                 compiled into the function only then); add `timeout = \"...\"` to the attribute",
            ))
        } else {
            config.set(key, value)
        };
        if let Err(e) = applied {
            notifier::emit(
                name,
                EventKind::ConfigRejected {
                    message: format!("{ENV_OVERRIDES}: {e}"),
                },
            );
        }
    }
    if config.store == StoreKind::Redis && settings.redis.is_none() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::warn!(
                breaker = name,
                "store = \"redis\" is declared but no Redis store is configured; such breakers \
                 keep their state in memory, per process"
            );
        });
    }
    let breaker: &'static Breaker = Box::leak(Box::new(Breaker::new(
        name,
        config,
        fallback,
        Arc::clone(&settings.clock),
    )));
    if let Some(fault) = settings.faults.get(name) {
        breaker.set_local_fault(Some(*fault));
    }
    reg.insert(
        name,
        Entry {
            breaker,
            declared,
            site,
            explicit,
        },
    );
    drop(reg);
    settings.store(config.store).attach(Handle { breaker });
    breaker
}

/// A breaker outside the registry, attached to `store` only: for simulating many instances
/// (each with its own store) in one process, as the fleet scale benchmark does. Not public
/// API (reached through `__private`). The breaker is leaked, as registered ones are.
#[doc(hidden)]
pub fn standalone(
    name: &'static str,
    config: Config,
    fallback: Option<&'static str>,
    store: &dyn Store,
) -> Handle {
    let breaker: &'static Breaker = Box::leak(Box::new(Breaker::new(
        name,
        config,
        fallback,
        Arc::new(TokioClock),
    )));
    store.attach(Handle { breaker });
    Handle { breaker }
}

/// Runtime settings, fixed when the first breaker is created.
pub(crate) struct Settings {
    clock: Arc<dyn Clock>,
    memory: Arc<dyn Store>,
    redis: Option<Arc<dyn Store>>,
    overrides: HashMap<String, Vec<(String, String)>>,
    faults: HashMap<String, Fault>,
}

impl Settings {
    fn store(&self, kind: StoreKind) -> &Arc<dyn Store> {
        match kind {
            StoreKind::Redis => self.redis.as_ref().unwrap_or(&self.memory),
            StoreKind::Memory => &self.memory,
        }
    }
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| {
        let mut b = Runtime::builder();
        if let Ok(raw) = std::env::var(ENV_FAULTS) {
            let (good, bad) = parse_fault_list(&raw);
            b.faults.extend(good);
            for message in bad {
                notifier::emit("", EventKind::ConfigRejected { message });
            }
        }
        if let Ok(raw) = std::env::var(ENV_OVERRIDES) {
            for err in b.add_overrides(&raw) {
                notifier::emit(
                    "",
                    EventKind::ConfigRejected {
                        message: format!("{ENV_OVERRIDES}: {err}"),
                    },
                );
            }
        }
        #[cfg(feature = "redis")]
        match crate::redis_store::RedisStore::from_env() {
            Ok(Some(store)) => b = b.redis_store(Arc::new(store)),
            Ok(None) => {}
            Err(e) => notifier::emit(
                "",
                EventKind::ConfigRejected {
                    message: e.to_string(),
                },
            ),
        }
        b.build()
    })
}

/// Process-wide runtime settings. Optional: without [`RuntimeBuilder::install`], breakers use
/// the tokio clock, the `tracing` notifier, the memory store and `BREAKER_OVERRIDES` (bad entries
/// are skipped and reported as [`EventKind::ConfigRejected`]).
#[derive(Debug)]
pub struct Runtime(());

impl Runtime {
    /// A builder with the defaults.
    #[must_use]
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            metrics_interval: Duration::from_secs(1),
            clock: Arc::new(TokioClock),
            notifiers: Vec::new(),
            redis: None,
            store_down_after: None,
            overrides: HashMap::new(),
            faults: HashMap::new(),
        }
    }
}

/// Builds the runtime settings; see [`Runtime`].
#[derive(Debug)]
pub struct RuntimeBuilder {
    metrics_interval: Duration,
    clock: Arc<dyn Clock>,
    notifiers: Vec<Arc<dyn Notifier>>,
    redis: Option<Arc<dyn Store>>,
    store_down_after: Option<Duration>,
    overrides: HashMap<String, Vec<(String, String)>>,
    faults: HashMap<String, Fault>,
}

impl RuntimeBuilder {
    /// Injects `fault` into breaker `name`'s calls in this process (as `BREAKER_FAULTS` does).
    #[must_use]
    pub fn fault(mut self, name: &str, fault: Fault) -> Self {
        self.faults.insert(name.to_owned(), fault);
        self
    }

    /// Reads `BREAKER_FAULTS`.
    ///
    /// # Errors
    /// Every malformed entry, in one error; nothing is applied then.
    pub fn faults_from_env(self) -> Result<Self, ConfigError> {
        match std::env::var(ENV_FAULTS) {
            Ok(raw) => self.faults_strict(&raw),
            Err(_) => Ok(self),
        }
    }

    /// `name=fault,...`, all or nothing.
    fn faults_strict(mut self, raw: &str) -> Result<Self, ConfigError> {
        let (good, bad) = parse_fault_list(raw);
        if !bad.is_empty() {
            return Err(ConfigError::new(ENV_FAULTS, bad.join("; ")));
        }
        self.faults.extend(good);
        Ok(self)
    }

    /// How often the `metrics` feature publishes every breaker's counters (default 1 s).
    #[must_use]
    pub fn metrics_interval(mut self, every: Duration) -> Self {
        self.metrics_interval = every.max(Duration::from_millis(10));
        self
    }

    /// The clock breakers read (default: [`TokioClock`]).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a notifier; the first one replaces the default [`crate::TracingNotifier`].
    #[must_use]
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// The store serving breakers declared `store = "redis"`.
    #[must_use]
    pub fn redis_store(mut self, store: Arc<dyn Store>) -> Self {
        if let Some(after) = self.store_down_after {
            store.set_store_down_after(after);
        }
        self.redis = Some(store);
        self
    }

    /// How long the shared store must keep failing (every request and reconnection) before
    /// it counts as down: breakers then judge probes locally, and one `StoreHealth` event is
    /// raised each way. Shorter stalls are slowness: nothing changes. Default 1 s; also
    /// `BREAKER_STORE_DOWN_AFTER` (`"1s"`, `"500ms"`).
    #[must_use]
    pub fn store_down_after(mut self, after: Duration) -> Self {
        self.store_down_after = Some(after);
        if let Some(store) = &self.redis {
            store.set_store_down_after(after);
        }
        self
    }

    /// Overrides one setting of one breaker, e.g. `("daum", "threshold", "10")`.
    ///
    /// # Errors
    /// An unknown setting or a value out of range. Rules between settings (`max_open_for`
    /// against the breaker's `open_for`) are checked when the breaker is created; an override
    /// that breaks one is skipped and reported as [`EventKind::ConfigRejected`].
    pub fn setting(mut self, breaker: &str, key: &str, value: &str) -> Result<Self, ConfigError> {
        Config::check_setting(key, value)?;
        self.overrides
            .entry(breaker.to_owned())
            .or_default()
            .push((key.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// Reads `BREAKER_OVERRIDES`.
    ///
    /// # Errors
    /// Every malformed entry, in one error; nothing is applied then.
    pub fn from_env(mut self) -> Result<Self, ConfigError> {
        let Ok(raw) = std::env::var(ENV_OVERRIDES) else {
            return Ok(self);
        };
        let errors = self.add_overrides(&raw);
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(ConfigError::new(ENV_OVERRIDES, errors.join("; ")))
        }
    }

    /// Parses `name.key=value,...`; applies the good entries and returns the bad ones.
    fn add_overrides(&mut self, raw: &str) -> Vec<String> {
        let mut errors = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry
                .split_once('=')
                .and_then(|(lhs, value)| {
                    let (name, key) = lhs.trim().rsplit_once('.')?;
                    Some((name.trim(), key.trim(), value.trim()))
                })
                .filter(|(name, key, _)| !name.is_empty() && !key.is_empty());
            let Some((name, key, value)) = parsed else {
                errors.push(format!(
                    "`{entry}` is not of the form `breaker.setting=value`"
                ));
                continue;
            };
            match Config::check_setting(key, value) {
                Ok(()) => self
                    .overrides
                    .entry(name.to_owned())
                    .or_default()
                    .push((key.to_owned(), value.to_owned())),
                Err(e) => errors.push(format!("`{entry}`: {e}")),
            }
        }
        errors
    }

    fn build(self) -> Settings {
        for n in self.notifiers {
            notifier::add_notifier(n);
        }
        // Alert notifiers configured by the environment (`BREAKER_WEBHOOK_URL`,
        // `BREAKER_TELEGRAM_*`) come in addition to the others: no code needed.
        #[cfg(any(feature = "webhook", feature = "telegram"))]
        {
            let (notifiers, errors) = crate::alert_http::from_env();
            if !notifiers.is_empty() {
                notifier::install_default();
                for n in notifiers {
                    notifier::add_notifier_keeping_default(n);
                }
            }
            for e in errors {
                notifier::emit(
                    "",
                    EventKind::ConfigRejected {
                        message: e.to_string(),
                    },
                );
            }
        }
        #[cfg(feature = "metrics")]
        crate::metrics_export::start(self.metrics_interval);
        Settings {
            clock: self.clock,
            memory: Arc::new(MemoryStore),
            redis: self.redis,
            overrides: self.overrides,
            faults: self.faults,
        }
    }

    /// Installs the settings for the whole process.
    ///
    /// # Errors
    /// When settings were already installed, or a breaker was already created (it would keep
    /// the defaults): install before the first call.
    pub fn install(self) -> Result<(), ConfigError> {
        let mut pending = Some(self);
        SETTINGS.get_or_init(|| {
            pending
                .take()
                .map_or_else(|| Runtime::builder().build(), RuntimeBuilder::build)
        });
        match pending {
            None => Ok(()),
            Some(_) => Err(ConfigError::new(
                "runtime",
                "settings are already fixed: install them before the first breaker is used",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_settings_are_checked_at_once() {
        let b = Runtime::builder();
        let b = b.setting("daum", "threshold", "10").unwrap();
        let b = b.setting("daum", "max_open_for", "1s").unwrap();
        assert!(b.overrides["daum"].len() == 2);
        let e = Runtime::builder()
            .setting("daum", "threshold", "0")
            .unwrap_err();
        assert_eq!(e.setting(), "threshold");
        let e = Runtime::builder()
            .setting("daum", "colour", "red")
            .unwrap_err();
        assert!(e.to_string().contains("unknown setting `colour`"), "{e}");
        let e = Runtime::builder()
            .setting("daum", "timeout", "3")
            .unwrap_err();
        assert!(e.to_string().contains("no unit"), "{e}");
    }

    #[test]
    fn strict_faults_apply_all_or_nothing() {
        let b = Runtime::builder()
            .faults_strict("daum=error:0.5, juso=open")
            .unwrap();
        assert_eq!(b.faults["daum"], Fault::Error { rate: 0.5 });
        assert_eq!(b.faults["juso"], Fault::Open);
        let e = Runtime::builder()
            .faults_strict("daum=error, juso=sideways")
            .unwrap_err();
        assert_eq!(e.setting(), ENV_FAULTS);
        assert!(e.to_string().contains("`juso`"), "{e}");
    }

    #[test]
    fn overrides_parse_good_entries_and_return_bad_ones() {
        let mut b = Runtime::builder();
        let errors =
            b.add_overrides("a.threshold=3, my.app::b.timeout = 2s,,x, .threshold=1, c.window=0s");
        assert_eq!(b.overrides["a"], [("threshold".to_owned(), "3".to_owned())]);
        assert_eq!(
            b.overrides["my.app::b"],
            [("timeout".to_owned(), "2s".to_owned())]
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("`x` is not of the form"));
        assert!(errors[1].contains("`.threshold=1` is not of the form"));
        assert!(errors[2].contains("zero"));
    }
}
