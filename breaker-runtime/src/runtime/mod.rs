//! The composition root: the registry of breakers, [`Handle`](handle::Handle), the
//! [`Runtime`](builder::Runtime) builder, the environment (every `BREAKER_*` variable is read in
//! [`env`]), the link-time list of annotated functions, and the metrics export. The only layer
//! that names concrete stores and notifiers.

pub(crate) mod builder;
pub(crate) mod built;
pub(crate) mod env;
pub(crate) mod handle;
#[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
mod http_status;
#[cfg(feature = "tower")]
pub mod layer;
pub(crate) mod lookup;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "reqwest-middleware")]
pub mod middleware;
pub(crate) mod registry;
pub(crate) mod sites;
