//! The address-search service of a job board: the story of the 2019 postcode outage, as a
//! running web service.
//!
//! Users search for addresses on a page ([`web`]). The primary provider, shaped like Daum's
//! postcode service, sits behind a circuit breaker whose fallback is the secondary, shaped like
//! the road-name address API; when both fail, users read the operator's notice ([`search`]). Both
//! providers are real HTTP servers ([`providers`]): embedded mocks on loopback ports by default,
//! with a control endpoint that takes them down, slows them or makes them flap. An emergency admin
//! console forces, resets and swaps the breakers, injects faults and posts the notice, all behind a
//! bearer token.
//!
//! ```no_run
//! # async fn demo() -> Result<(), breaker_examples::StartError> {
//! let running = breaker_examples::start(breaker_examples::Config::default()).await?;
//! println!("search at {}/ , admin at {}/admin", running.url(), running.url());
//! println!("token {}", running.admin_token());
//! // ... drive it over HTTP; dropping `running` stops it.
//! running.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The server is meant to face clients directly: every connection and request is bounded in
//! time and number, each client's searches, admin requests and failed logins in rate, and every
//! answer carries security headers ([`Limits`], set through [`Config::limits`]).
//!
//! The breakers are process-wide (`provider.daum`, `provider.juso`): several services started in
//! one process share them. With `BREAKER_REDIS_URL` set, several processes share them too.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;

mod duration;
mod limits;
pub mod providers;
pub mod search;
mod server;
pub mod suggest;
mod token;
pub mod web;

pub use limits::{Limits, MAX_TIMEOUT, RateLimit};
use providers::{MockProvider, Provider};
use search::Providers;
use server::Server;
pub use server::base_url;
pub use token::MIN_TOKEN_CHARS;

/// How to start the service.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on (default 127.0.0.1).
    pub bind: IpAddr,
    /// Port to listen on; 0 (the default here) picks a free one.
    pub port: u16,
    /// The admin API's bearer token, at least [`MIN_TOKEN_CHARS`] characters after trimming;
    /// `None` generates a random one ([`Running::admin_token`]).
    pub admin_token: Option<String>,
    /// Base URL of an external daum-like provider; `None` starts the embedded mock.
    pub daum_url: Option<String>,
    /// Base URL of an external juso-like provider; `None` starts the embedded mock.
    pub juso_url: Option<String>,
    /// The mock providers' control token (their `/_control` needs it): the embedded mocks are
    /// started with it, and the admin console sends it to external mocks. `None` generates one
    /// ([`Running::control_token`]).
    pub mock_control_token: Option<String>,
    /// Timeouts and limits of the service's server ([`Limits`]).
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            admin_token: None,
            daum_url: None,
            juso_url: None,
            mock_control_token: None,
            limits: Limits::default(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("daum_url", &self.daum_url)
            .field("juso_url", &self.juso_url)
            .field(
                "mock_control_token",
                &self.mock_control_token.as_ref().map(|_| "<redacted>"),
            )
            .field("limits", &self.limits)
            .finish()
    }
}

/// Why the service did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The service's or a mock provider's port could not be bound.
    Bind {
        /// What was being bound.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
    /// A provider URL is not usable.
    ProviderUrl(String),
    /// The mock providers' control token given has fewer than [`MIN_TOKEN_CHARS`] characters.
    ControlTokenTooShort {
        /// How many characters it has.
        chars: usize,
    },
    /// The admin token given has fewer than [`MIN_TOKEN_CHARS`] characters (after trimming
    /// spaces; an empty one has 0).
    TokenTooShort {
        /// How many characters it has.
        chars: usize,
    },
    /// A limit cannot work (a zero timeout, a zero cap...): the message names its flag.
    Limits(String),
    /// The breaker runtime rejected `BREAKER_*` settings from the environment (a key prefix with
    /// `{`, a malformed `BREAKER_OVERRIDES` entry...): rather than run with its breakers in
    /// memory, apart from the fleet, the service does not start. Each message names its variable.
    RuntimeSettings(Vec<String>),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind { what, source } => write!(f, "cannot listen on {what}: {source}"),
            StartError::ProviderUrl(m) => f.write_str(m),
            StartError::TokenTooShort { chars } => write!(
                f,
                "the admin token has {chars} characters; it must have at least \
                 {MIN_TOKEN_CHARS} characters: pass a longer --admin-token / BREAKER_ADMIN_TOKEN \
                 (e.g. `openssl rand -hex 16`), or leave both unset to get a generated one",
            ),
            StartError::ControlTokenTooShort { chars } => write!(
                f,
                "the mock providers' control token has {chars} characters; it must have at \
                 least {MIN_TOKEN_CHARS}: pass a longer --mock-control-token / \
                 BREAKER_MOCK_TOKEN, or leave both unset to get a generated one",
            ),
            StartError::Limits(m) => write!(f, "unusable limit: {m}"),
            StartError::RuntimeSettings(rejected) => write!(
                f,
                "the breaker runtime rejected its settings: {}",
                rejected.join("; ")
            ),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The running service. Dropping it stops the HTTP servers (theirs and the embedded mock
/// providers'); [`Running::shutdown`] stops them and waits.
pub struct Running {
    server: Server,
    token: String,
    token_generated: bool,
    control_token: String,
    providers: Arc<Providers>,
    daum_mock: Option<MockProvider>,
    juso_mock: Option<MockProvider>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr())
            .field("daum", &self.provider_url(Provider::Daum))
            .field("juso", &self.provider_url(Provider::Juso))
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The base URL, `http://127.0.0.1:PORT` (loopback when bound to all interfaces).
    #[must_use]
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The admin API's bearer token.
    #[must_use]
    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// The mock providers' control token (`Authorization: Bearer <token>` on their `/_control`).
    #[must_use]
    pub fn control_token(&self) -> &str {
        &self.control_token
    }

    /// Whether the token was generated because none was given.
    #[must_use]
    pub fn token_generated(&self) -> bool {
        self.token_generated
    }

    /// A provider's base URL, embedded mock or external.
    #[must_use]
    pub fn provider_url(&self, provider: Provider) -> String {
        self.providers
            .url(provider)
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// A provider's control endpoint, `<base>/_control` (`POST {"mode":"down"}`).
    #[must_use]
    pub fn control_url(&self, provider: Provider) -> String {
        self.providers.control_url(provider).to_string()
    }

    /// The embedded mock of `provider`, to change its mode without HTTP; `None` when the service
    /// uses an external provider.
    #[must_use]
    pub fn mock(&self, provider: Provider) -> Option<&MockProvider> {
        match provider {
            Provider::Daum => self.daum_mock.as_ref(),
            Provider::Juso => self.juso_mock.as_ref(),
        }
    }

    /// Stops accepting connections, lets requests in flight finish (at most 2 s), then stops the
    /// embedded mock providers.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        for mock in [self.daum_mock, self.juso_mock].into_iter().flatten() {
            mock.shutdown().await;
        }
    }
}

/// How often the per-client limits forget the clients they no longer hold back.
const FORGET_IDLE_CLIENTS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts the service: the embedded mock providers (unless external URLs are given), then the
/// web server on `config.bind:config.port`. Must be called inside a tokio runtime with I/O and
/// time enabled; the servers run as tasks of that runtime.
///
/// # Errors
/// When a port cannot be bound, a provider URL is unusable, the token is shorter than
/// [`MIN_TOKEN_CHARS`] or a limit cannot work.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let (token, token_generated) = match config.admin_token {
        Some(t) => {
            let t = t.trim();
            let chars = t.chars().count();
            if chars < MIN_TOKEN_CHARS {
                return Err(StartError::TokenTooShort { chars });
            }
            (t.to_owned(), false)
        }
        None => (generate_token(), true),
    };
    let explicit_control_token = config.mock_control_token.is_some();
    let control_token = match config.mock_control_token {
        Some(t) => {
            let t = t.trim();
            let chars = t.chars().count();
            if chars < MIN_TOKEN_CHARS {
                return Err(StartError::ControlTokenTooShort { chars });
            }
            t.to_owned()
        }
        None => token::generate(),
    };
    let limits = config.limits;
    limits.validate().map_err(StartError::Limits)?;
    // Sets the runtime up from the environment now (the first search would), so that a
    // rejected setting stops the start instead of a log line at the first search.
    let rejected = breaker_runtime::Runtime::rejected_settings();
    if !rejected.is_empty() {
        return Err(StartError::RuntimeSettings(rejected.to_vec()));
    }
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let control = control_token.as_str();
    let mock = |provider: Provider| async move {
        MockProvider::start_with_token(provider, loopback, control)
            .await
            .map_err(|source| StartError::Bind {
                what: format!("a loopback port for the {provider} mock"),
                source,
            })
    };
    let daum_mock = match config.daum_url {
        Some(_) => None,
        None => Some(mock(Provider::Daum).await?),
    };
    let juso_mock = match config.juso_url {
        Some(_) => None,
        None => Some(mock(Provider::Juso).await?),
    };
    let daum_url = config
        .daum_url
        .or_else(|| daum_mock.as_ref().map(|m| m.url().to_owned()))
        .unwrap_or_default();
    let juso_url = config
        .juso_url
        .or_else(|| juso_mock.as_ref().map(|m| m.url().to_owned()))
        .unwrap_or_default();
    // The control token goes to the embedded mocks, and to external providers only when one
    // was given for them: a real provider is not sent a secret it never asked for.
    let mut providers = Providers::new(&daum_url, &juso_url).map_err(StartError::ProviderUrl)?;
    for (provider, embedded) in [
        (Provider::Daum, daum_mock.is_some()),
        (Provider::Juso, juso_mock.is_some()),
    ] {
        if embedded || explicit_control_token {
            providers = providers.with_control_token(provider, &control_token);
        }
    }
    let providers = Arc::new(providers);

    let bind = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| StartError::Bind {
            what: bind.to_string(),
            source,
        })?;
    let (router, throttles) = web::build(web::App::new(Arc::clone(&providers), &token), &limits);
    let transport = server::Transport {
        header_read_timeout: limits.header_read_timeout,
        max_connections: limits.max_connections,
        max_connections_per_client: limits.max_connections_per_client,
    };
    let server =
        Server::spawn_with(listener, router, transport).map_err(|source| StartError::Bind {
            what: bind.to_string(),
            source,
        })?;
    // Ends by itself once the server and its router are gone.
    tokio::spawn(throttles.forget_idle(FORGET_IDLE_CLIENTS_EVERY));
    Ok(Running {
        server,
        token,
        token_generated,
        control_token,
        providers,
        daum_mock,
        juso_mock,
    })
}

/// A random 128-bit token in hex (32 characters), from the operating system's random source.
#[must_use]
pub fn generate_token() -> String {
    token::generate()
}
