//! The process-wide registry: one breaker per name, created at its first call (or when listed:
//! see [`crate::runtime::lookup`]) with the declared settings plus overrides.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use crate::breaker::Breaker;
use crate::core::config::{Config, ConfigError, StoreKind};
use crate::notify::{self as notifier, EventKind};
use crate::runtime::builder::settings;
use crate::runtime::env::ENV_OVERRIDES;
use crate::runtime::handle::Handle;
use crate::store::Store;

/// Every breaker created so far, sorted by name (see [`crate::runtime::lookup::breakers`] for
/// the public list, which includes declared breakers not called yet).
pub(crate) fn all() -> Vec<Handle> {
    registry()
        .values()
        .map(|e| Handle { breaker: e.breaker })
        .collect()
}

/// The breaker named `name`, if it was created.
pub(crate) fn find(name: &str) -> Option<Handle> {
    registry().get(name).map(|e| Handle { breaker: e.breaker })
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
    let reg = registry();
    if let Some(e) = reg.get(name) {
        if e.site == BUILT && e.declared != declared {
            tracing::warn!(
                breaker = name,
                "a function declares breaker `{name}`, which was built in code with other \
                 settings; the built breaker's settings apply"
            );
        } else if e.site != site {
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
    create(reg, settings, name, declared, site, explicit, fallback)
}

/// The `site` of breakers built in code ([`crate::Breaker::builder`]): no function's address.
const BUILT: usize = 0;

/// The breaker named `name` for [`crate::Breaker::builder`]: created with `config` (plus
/// overrides), or the registered one if its settings are `config`.
pub(crate) fn get_or_create_built(
    name: &str,
    config: Config,
    fallback: Option<String>,
) -> Result<&'static Breaker, ConfigError> {
    // Before the registry's lock: the first call sets the runtime up, which may create stores.
    let settings = settings();
    let reg = registry();
    if let Some(e) = reg.get(name) {
        return if e.declared == config && e.breaker.fallback().is_some() == fallback.is_some() {
            Ok(e.breaker)
        } else {
            Err(ConfigError::new(
                "name",
                format!(
                    "a breaker named `{name}` exists with other settings ({}); one name is one \
                     breaker: build it with the same settings or give it another name",
                    if e.site == BUILT {
                        "built in code"
                    } else {
                        "declared by a function"
                    }
                ),
            ))
        };
    }
    let fallback = fallback.map(|f| &*Box::leak(f.into_boxed_str()));
    Ok(create(reg, settings, name, config, BUILT, true, fallback))
}

fn create(
    mut reg: std::sync::MutexGuard<'static, BTreeMap<&'static str, Entry>>,
    settings: &'static crate::runtime::builder::Settings,
    name: &str,
    declared: Config,
    site: usize,
    explicit: bool,
    fallback: Option<&'static str>,
) -> &'static Breaker {
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let mut config = declared;
    for (key, value) in settings.overrides.get(name).into_iter().flatten() {
        // A built breaker's calls always run under `MaybeTimeout`; a declared function has
        // the timer only when declared with a `timeout`.
        let applied = if key == "timeout" && declared.timeout.is_none() && site != BUILT {
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
        settings.clock.clone(),
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
    settings.store(config.store).attach(breaker);
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
    let breaker: &'static Breaker = Box::leak(Box::new(Breaker::new(name, config, fallback, None)));
    store.attach(breaker);
    Handle { breaker }
}
