//! The link-time list of annotated functions' sites, and the per-function `static` the attribute
//! generates, which resolves to its breaker in the registry at the first call.

use std::sync::{OnceLock, PoisonError, RwLock};

use crate::breaker::Breaker;
use crate::core::config::{Config, HASH_TAG_CHARS};
use crate::runtime::handle::Handle;
use crate::runtime::registry;

/// Every annotated function's site, collected at link time so
/// [`breakers`](crate::runtime::lookup::breakers) lists
/// breakers from program start, before their first call.
#[linkme::distributed_slice]
pub static SITES: [&'static Site];

/// The per-function `static` the attribute generates: the declared configuration and, after the
/// first call, the breaker it resolved to.
#[derive(Debug)]
pub struct Site {
    name: Option<&'static str>,
    explicit: bool,
    config: Config,
    fallback: Option<&'static str>,
    breaker: OnceLock<&'static Breaker>,
    /// For a method named after `Self`: the type the first breaker was made for, and the
    /// breakers of other types (a trait's default method is one function for every `Self`).
    first_type: OnceLock<&'static str>,
    other_types: RwLock<Vec<(&'static str, &'static Breaker)>>,
}

impl Site {
    /// `name` is `None` when it depends on `Self` (a method without an explicit name): it is
    /// then computed at the first call, by [`Site::get_for`].
    #[must_use]
    pub const fn new(
        name: Option<&'static str>,
        explicit: bool,
        config: Config,
        fallback: Option<&'static str>,
    ) -> Self {
        Site {
            name,
            explicit,
            config,
            fallback,
            breaker: OnceLock::new(),
            first_type: OnceLock::new(),
            other_types: RwLock::new(Vec::new()),
        }
    }

    /// The breaker of a site with a static name: one atomic load after the first call.
    #[inline]
    pub fn get(&'static self) -> &'static Breaker {
        match self.breaker.get() {
            Some(b) => b,
            None => self.init(),
        }
    }

    /// The breaker of a method named `module::Type::method` after `Self`: one atomic load and a
    /// pointer comparison after the first call for the first type; a read lock for others.
    #[inline]
    pub fn get_for(
        &'static self,
        type_name: &'static str,
        method: &'static str,
    ) -> &'static Breaker {
        if let (Some(b), Some(t)) = (self.breaker.get(), self.first_type.get())
            && (std::ptr::eq(*t, type_name) || *t == type_name)
        {
            return b;
        }
        self.init_for(type_name, method)
    }

    #[cold]
    fn init(&'static self) -> &'static Breaker {
        self.breaker
            .get_or_init(|| self.create(self.name.unwrap_or("<unnamed>")))
    }

    #[cold]
    fn init_for(&'static self, type_name: &'static str, method: &'static str) -> &'static Breaker {
        let first = *self.first_type.get_or_init(|| type_name);
        if first == type_name {
            return self
                .breaker
                .get_or_init(|| self.create(&method_name(type_name, method)));
        }
        let known = self
            .other_types
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(t, _)| *t == type_name)
            .map(|(_, b)| *b);
        if let Some(b) = known {
            return b;
        }
        let b = self.create(&method_name(type_name, method));
        self.other_types
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((type_name, b));
        b
    }

    fn create(&'static self, name: &str) -> &'static Breaker {
        // The metrics exporter lists every breaker, declared ones included: it starts with the
        // first breaker.
        #[cfg(feature = "metrics")]
        crate::runtime::metrics::start(crate::runtime::builder::settings().metrics_interval, all);
        registry::get_or_create(
            name,
            self.config,
            std::ptr::from_ref(self) as usize,
            self.explicit,
            self.fallback,
        )
    }
}

/// Every breaker: the declared ones (created now if they were not yet) and the others created so
/// far, sorted by name.
pub(crate) fn all() -> Vec<Handle> {
    register_sites();
    registry::all()
}

pub(crate) fn register_sites() {
    for site in SITES {
        if site.name.is_some() && site.breaker.get().is_none() {
            site.init();
        }
    }
}

/// The default name of a method: `module::Type::method`, without the type's generic arguments,
/// and without the braces of a type declared inside a closure or an async block
/// (`app::main::{{closure}}::Cache` names `app::main::closure::Cache::get`): a breaker name
/// holds no `{` or `}` (see `check_name`).
#[must_use]
pub fn method_name(type_name: &str, method: &str) -> String {
    let ty = type_name.split('<').next().unwrap_or(type_name);
    let mut name: String = ty.chars().filter(|c| !HASH_TAG_CHARS.contains(c)).collect();
    name.push_str("::");
    name.push_str(method);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_have_no_generics_and_no_braces() {
        assert_eq!(method_name("app::Cache<u8>", "get"), "app::Cache::get");
        assert_eq!(
            method_name("app::main::{{closure}}::Cache", "get"),
            "app::main::closure::Cache::get"
        );
    }
}
