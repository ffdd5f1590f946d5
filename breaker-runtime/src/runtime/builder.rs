//! [`Runtime`] and [`RuntimeBuilder`]: the process-wide settings (clock, notifiers, stores,
//! overrides, faults), fixed when the first breaker is created.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::core::clock::Clock;
use crate::core::config::{Config, ConfigError, StoreKind};
use crate::core::fault::{Fault, parse_fault_list};
use crate::notify::{self as notifier, EventKind, Notifier};
use crate::runtime::env::{self, ENV_FAULTS, ENV_OVERRIDES};
use crate::store::{MemoryStore, Store};

/// Runtime settings, fixed when the first breaker is created.
pub(crate) struct Settings {
    /// `None`: [`crate::TokioClock`], which OPEN rejections may replace with the coarse clock.
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) memory: Arc<dyn Store>,
    pub(crate) redis: Option<Arc<dyn Store>>,
    pub(crate) overrides: HashMap<String, Vec<(String, String)>>,
    pub(crate) faults: HashMap<String, Fault>,
    /// How often the metrics exporter publishes (it starts with the first breaker).
    #[cfg(feature = "metrics")]
    pub(crate) metrics_interval: Duration,
    /// The settings from the environment that were rejected while these were built (each also
    /// reported as a `ConfigRejected` event): [`Runtime::rejected_settings`].
    pub(crate) rejected: Vec<String>,
}

impl Settings {
    pub(crate) fn store(&self, kind: StoreKind) -> &Arc<dyn Store> {
        match kind {
            StoreKind::Redis => self.redis.as_ref().unwrap_or(&self.memory),
            StoreKind::Memory => &self.memory,
        }
    }
}

static RUNTIME: OnceLock<Settings> = OnceLock::new();

/// The settings in force: installed by [`RuntimeBuilder::install`], else the defaults plus the
/// environment (see [`crate::runtime::env`]), fixed at the first use.
pub(crate) fn settings() -> &'static Settings {
    RUNTIME.get_or_init(|| {
        let mut b = Runtime::builder();
        let (faults, bad) = env::faults_lenient();
        b.faults.extend(faults);
        let mut rejected = bad;
        if let Some(raw) = env::overrides() {
            for err in b.add_overrides(&raw) {
                rejected.push(format!("{ENV_OVERRIDES}: {err}"));
            }
        }
        #[cfg(feature = "redis")]
        match env::redis_store(&mut rejected) {
            Ok(Some(store)) => b = b.redis_store(Arc::new(store)),
            Ok(None) => {}
            Err(e) => rejected.push(e.to_string()),
        }
        for message in &rejected {
            notifier::emit(
                "",
                EventKind::ConfigRejected {
                    message: message.clone(),
                },
            );
        }
        let mut settings = b.build();
        rejected.append(&mut settings.rejected);
        settings.rejected = rejected;
        settings
    })
}

/// Process-wide runtime settings. Optional: without [`RuntimeBuilder::install`], breakers use
/// the tokio clock, the `tracing` notifier, the memory store and `BREAKER_OVERRIDES` (bad entries
/// are skipped and reported as [`EventKind::ConfigRejected`]).
#[derive(Debug)]
pub struct Runtime(());

impl Runtime {
    /// The `BREAKER_*` settings the runtime rejected when it was set up (a malformed
    /// `BREAKER_OVERRIDES`, `BREAKER_FAULTS` or `BREAKER_STORE_DOWN_AFTER`, an unusable
    /// `BREAKER_REDIS_URL` or `BREAKER_KEY_PREFIX`, a Telegram API that is not `https`...), each
    /// as its message. Sets the runtime up from the environment first if nothing did yet (as the
    /// first breaker call would), so a service can call it while it starts and refuse to run
    /// half-configured: the runtime itself carries on without what it rejected (the memory
    /// store instead of an unusable Redis, say) and reports each as a `ConfigRejected` event.
    /// Not here: an override that only its breaker can refuse, when it registers (a `timeout`
    /// for a breaker declared without one), reported then.
    ///
    /// ```
    /// // Nothing malformed in this process's environment.
    /// assert!(breaker_runtime::Runtime::rejected_settings().is_empty());
    /// ```
    #[must_use]
    pub fn rejected_settings() -> &'static [String] {
        &settings().rejected
    }

    /// A builder with the defaults.
    #[must_use]
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            metrics_interval: Duration::from_secs(1),
            clock: None,
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
    clock: Option<Arc<dyn Clock>>,
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
        match env::faults() {
            Some(raw) => self.faults_strict(&raw),
            None => Ok(self),
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

    /// The clock breakers read (default: [`TokioClock`](crate::TokioClock)). With a clock of
    /// your own, every OPEN rejection reads it (the coarse clock that spares the default's
    /// rejections a clock read runs on real time only).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Adds a notifier; the first one replaces the default [`TracingNotifier`](crate::notify::TracingNotifier).
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
        let Some(raw) = env::overrides() else {
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
        #[cfg_attr(
            not(any(feature = "webhook", feature = "telegram")),
            expect(unused_mut, reason = "only alert notifiers add to it here")
        )]
        let mut rejected = Vec::new();
        for n in self.notifiers {
            notifier::add_notifier(n);
        }
        // Alert notifiers configured by the environment (`BREAKER_WEBHOOK_URL`,
        // `BREAKER_TELEGRAM_*`) come in addition to the others: no code needed.
        #[cfg(any(feature = "webhook", feature = "telegram"))]
        {
            let (notifiers, errors) = env::alert_notifiers();
            if !notifiers.is_empty() {
                notifier::install_default();
                for n in notifiers {
                    notifier::add_notifier_keeping_default(n);
                }
            }
            for e in errors {
                let message = e.to_string();
                notifier::emit(
                    "",
                    EventKind::ConfigRejected {
                        message: message.clone(),
                    },
                );
                rejected.push(message);
            }
        }
        Settings {
            clock: self.clock,
            memory: Arc::new(MemoryStore),
            redis: self.redis,
            overrides: self.overrides,
            faults: self.faults,
            #[cfg(feature = "metrics")]
            metrics_interval: self.metrics_interval,
            rejected,
        }
    }

    /// Installs the settings for the whole process.
    ///
    /// # Errors
    /// When settings were already installed, or a breaker was already created (it would keep
    /// the defaults): install before the first call.
    pub fn install(self) -> Result<(), ConfigError> {
        let mut pending = Some(self);
        RUNTIME.get_or_init(|| {
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
