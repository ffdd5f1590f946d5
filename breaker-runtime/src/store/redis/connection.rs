//! Connecting to one Redis or to a Redis Cluster (TLS with the `tls` feature), the connection
//! both are used through ([`Conn`]), subscribing, timeouts, and which errors mean "Redis is not
//! answering" rather than "Redis refused".

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisFuture, Value};

use super::protocol::redact;

/// Connecting, and waiting for a reply to the store's own work (flushes, housekeeping): a
/// slow link (a reply in 600 ms) is slow, not down.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the store waits before connecting again after a connection or subscription failed.
pub(crate) const RECONNECT_EVERY: Duration = Duration::from_millis(250);

/// A connection to one Redis or to a cluster: what every script call and command of this
/// module runs on. Cheap to clone (clones share the connection).
///
/// ```no_run
/// # async fn demo() -> redis::RedisResult<()> {
/// let mut conn = breaker_runtime::redis::connect("redis://127.0.0.1:6379/").await?;
/// let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub enum Conn {
    /// One Redis.
    Single(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// How [`Target::connect`] connects: timeouts (1 s each by default, as the store uses) and,
/// for a cluster, how often a request is retried.
///
/// ```
/// use std::time::Duration;
/// use breaker_runtime::redis::ConnectOptions;
/// let patient = ConnectOptions::new()
///     .connect_timeout(Duration::from_secs(2))
///     .response_timeout(Duration::from_secs(2))
///     .cluster_retries(1);
/// assert_ne!(patient, ConnectOptions::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    connect_timeout: Duration,
    response_timeout: Duration,
    cluster_retries: Option<u32>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectOptions {
    /// 1 s to connect, 1 s for each reply, the cluster client's own number of retries.
    #[must_use]
    pub const fn new() -> ConnectOptions {
        ConnectOptions {
            connect_timeout: CONNECT_TIMEOUT,
            response_timeout: RESPONSE_TIMEOUT,
            cluster_retries: None,
        }
    }

    /// How long connecting may take.
    #[must_use]
    pub const fn connect_timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.connect_timeout = timeout;
        self
    }

    /// How long a request waits for its reply.
    #[must_use]
    pub const fn response_timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.response_timeout = timeout;
        self
    }

    /// How often a cluster request is retried (redirections, a node that is down).
    #[must_use]
    pub const fn cluster_retries(mut self, retries: u32) -> ConnectOptions {
        self.cluster_retries = Some(retries);
        self
    }
}

/// A URL or node list that cannot be used.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// A `rediss://` URL, but this build has no TLS (the `tls` feature of `breaker-runtime`).
    TlsNotEnabled,
    /// Not a Redis URL; the detail has its password hidden.
    NotAUrl(String),
    /// A cluster given by no node at all.
    NoNodes,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::TlsNotEnabled => f.write_str(
                "is a `rediss://` (TLS) URL: enable the `tls` feature of `breaker-runtime`",
            ),
            TargetError::NotAUrl(detail) => write!(f, "is not a Redis URL: {detail}"),
            TargetError::NoNodes => f.write_str("lists no node"),
        }
    }
}

impl std::error::Error for TargetError {}

impl From<TargetError> for redis::RedisError {
    fn from(e: TargetError) -> Self {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "unusable Redis URL",
            e.to_string(),
        ))
    }
}

/// Where a fleet's Redis is: one server, or a Redis Cluster by some of its nodes. Checked when
/// made, connected on demand (as often as needed: a lost connection is made again from it).
/// Its `Debug` never shows a password.
///
/// ```no_run
/// # async fn demo() -> redis::RedisResult<()> {
/// use breaker_runtime::redis::Target;
/// let cluster = Target::cluster(&["redis://h1:7000", "redis://h2:7001"])?;
/// let mut conn = cluster.connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Target {
    backend: Backend,
    options: ConnectOptions,
    /// The URL(s), password hidden.
    shown: String,
}

#[derive(Clone)]
enum Backend {
    Single(Box<Client>),
    Cluster(Vec<String>),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("redis", &self.shown)
            .field("options", &self.options)
            .finish()
    }
}

impl Target {
    /// One Redis: `redis://[user:password@]host:port[/db]`, or `rediss://` with the `tls`
    /// feature.
    ///
    /// # Errors
    /// [`TargetError::TlsNotEnabled`] for `rediss://` without the `tls` feature,
    /// [`TargetError::NotAUrl`] for anything that is not a Redis URL.
    ///
    /// ```
    /// use breaker_runtime::redis::{Target, TargetError};
    /// assert!(Target::single("redis://127.0.0.1:6379/").is_ok());
    /// assert!(matches!(Target::single("http://x"), Err(TargetError::NotAUrl(_))));
    /// ```
    pub fn single(url: &str) -> Result<Target, TargetError> {
        if url.starts_with("rediss://") && cfg!(not(feature = "tls")) {
            return Err(TargetError::TlsNotEnabled);
        }
        let client = Client::open(url).map_err(|e| TargetError::NotAUrl(redact(&e.to_string())))?;
        Ok(Target {
            backend: Backend::Single(Box::new(client)),
            options: ConnectOptions::new(),
            shown: redact(url),
        })
    }

    /// A Redis Cluster, by the URLs of some of its nodes.
    ///
    /// # Errors
    /// [`TargetError::NoNodes`] for an empty list, [`TargetError::NotAUrl`] when a node's URL
    /// is not one.
    ///
    /// ```
    /// use breaker_runtime::redis::{Target, TargetError};
    /// assert!(Target::cluster(&["redis://h1:7000", "redis://h2:7001"]).is_ok());
    /// assert_eq!(Target::cluster::<&str>(&[]).err(), Some(TargetError::NoNodes));
    /// ```
    pub fn cluster<S: AsRef<str>>(urls: &[S]) -> Result<Target, TargetError> {
        if urls.is_empty() {
            return Err(TargetError::NoNodes);
        }
        let urls: Vec<String> = urls.iter().map(|u| u.as_ref().to_owned()).collect();
        ClusterClient::new(urls.clone())
            .map_err(|e| TargetError::NotAUrl(redact(&e.to_string())))?;
        Ok(Target {
            shown: redact(&urls.join(",")),
            backend: Backend::Cluster(urls),
            options: ConnectOptions::new(),
        })
    }

    /// The same Redis, connected with `options`.
    #[must_use]
    pub fn with_options(mut self, options: ConnectOptions) -> Target {
        self.options = options;
        self
    }

    /// How it connects.
    #[must_use]
    pub fn options(&self) -> ConnectOptions {
        self.options
    }

    /// Whether it is a Redis Cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster(_))
    }

    /// A new connection.
    ///
    /// # Errors
    /// Redis unreachable (see [`is_connection_error`]) or refusing (a wrong password...).
    pub async fn connect(&self) -> redis::RedisResult<Conn> {
        let o = &self.options;
        match &self.backend {
            Backend::Single(client) => {
                let cfg = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(o.connect_timeout))
                    .set_response_timeout(Some(o.response_timeout));
                client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await
                    .map(Conn::Single)
            }
            Backend::Cluster(urls) => {
                let mut builder = ClusterClientBuilder::new(urls.clone())
                    .connection_timeout(o.connect_timeout)
                    .response_timeout(o.response_timeout);
                if let Some(n) = o.cluster_retries {
                    builder = builder.retries(n);
                }
                builder
                    .build()?
                    .get_async_connection()
                    .await
                    .map(Conn::Cluster)
            }
        }
    }

    /// Subscribes to `channels` on a connection of its own; returns once Redis confirmed the
    /// subscription. On a cluster, classic `PUBLISH` is broadcast over the cluster bus, so one
    /// subscription on any node hears every breaker. The stream ends when the subscription is
    /// lost; nothing is bounded in time here (callers bound the wait).
    ///
    /// # Errors
    /// Redis unreachable or refusing.
    ///
    /// ```no_run
    /// # async fn demo() -> redis::RedisResult<()> {
    /// use futures::StreamExt as _;
    /// use breaker_runtime::redis::{Keys, Message, Pushed, Target};
    /// let keys = Keys::new("breaker");
    /// let target = Target::single("redis://127.0.0.1:6379/")?;
    /// let mut sub = target.subscribe(&[keys.events()]).await?;
    /// while let Some(item) = sub.next().await {
    ///     if let Pushed::Message { payload, .. } = item {
    ///         println!("{:?}", Message::decode(&payload));
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, channels: &[&str]) -> redis::RedisResult<Subscription> {
        match &self.backend {
            Backend::Single(client) => {
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(channels).await?;
                Ok(Box::pin(ps.into_on_message().filter_map(|m| async move {
                    let payload = m.get_payload::<String>().ok()?;
                    Some(Pushed::Message {
                        channel: m.get_channel_name().to_owned(),
                        payload,
                    })
                })))
            }
            Backend::Cluster(urls) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<redis::PushInfo>();
                let o = &self.options;
                let client = ClusterClientBuilder::new(urls.clone())
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(tx)
                    .connection_timeout(o.connect_timeout)
                    .response_timeout(o.response_timeout)
                    .build()?;
                let mut con = client.get_async_connection().await?;
                con.subscribe(channels).await?;
                // The connection lives as long as the stream: its pushes feed it.
                Ok(Box::pin(futures_util::stream::unfold(
                    (rx, con),
                    |(mut rx, con)| async move {
                        loop {
                            let push = rx.recv().await?;
                            let text = |i: usize| match push.data.get(i) {
                                Some(Value::BulkString(b)) => {
                                    Some(String::from_utf8_lossy(b).into_owned())
                                }
                                _ => None,
                            };
                            let item = match push.kind {
                                redis::PushKind::Message => match (text(0), text(1)) {
                                    (Some(channel), Some(payload)) => {
                                        Pushed::Message { channel, payload }
                                    }
                                    _ => continue,
                                },
                                redis::PushKind::Subscribe => Pushed::Subscribed,
                                _ => continue,
                            };
                            return Some((item, (rx, con)));
                        }
                    },
                )))
            }
        }
    }
}

/// The messages of a [`Target::subscribe`].
pub type Subscription = Pin<Box<dyn Stream<Item = Pushed> + Send>>;

/// What a [`Subscription`] yields.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// A message published on one of the channels.
    Message {
        /// The channel.
        channel: String,
        /// The message (a [`Message`](super::protocol::Message) on the events channel, a
        /// breaker's name on the controls channel).
        payload: String,
    },
    /// A cluster connection (re)subscribed a channel: messages published while it was away
    /// were missed.
    Subscribed,
}

/// Connects to the Redis at `url` (see [`Target::single`]), with the default
/// [`ConnectOptions`].
///
/// # Errors
/// An unusable URL, Redis unreachable or refusing. Error texts may quote the URL: show them
/// through [`redact`].
///
/// ```no_run
/// # async fn demo() -> redis::RedisResult<()> {
/// let mut conn = breaker_runtime::redis::connect("redis://:secret@127.0.0.1:6379/").await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> redis::RedisResult<Conn> {
    Target::single(url)?.connect().await
}

/// Connects to a Redis Cluster by some of its nodes' URLs (see [`Target::cluster`]), with the
/// default [`ConnectOptions`].
///
/// # Errors
/// As [`connect`].
///
/// ```no_run
/// # async fn demo() -> redis::RedisResult<()> {
/// let nodes = ["redis://h1:7000", "redis://h2:7001", "redis://h3:7002"];
/// let mut conn = breaker_runtime::redis::connect_cluster(&nodes).await?;
/// # Ok(()) }
/// ```
pub async fn connect_cluster(urls: &[&str]) -> redis::RedisResult<Conn> {
    Target::cluster(urls)?.connect().await
}

/// Whether `e` means Redis did not answer (refused, unreachable, timed out, connection lost),
/// as opposed to an answer that is an error (a script error, data Redis refuses, a wrong
/// password). The store goes on with the next breaker after the second kind; the first ends
/// the round.
///
/// ```
/// use breaker_runtime::redis::is_connection_error;
/// let refused = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
/// assert!(is_connection_error(&refused));
/// let script = redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "bad"));
/// assert!(!is_connection_error(&script));
/// ```
#[must_use]
pub fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// `f`, or a timeout error after `limit`: no Redis request is awaited without a bound.
pub(crate) async fn bounded<T>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_when_made() {
        assert!(Target::single("redis://127.0.0.1:6379/").is_ok());
        assert!(matches!(
            Target::single("not a url"),
            Err(TargetError::NotAUrl(_))
        ));
        #[cfg(not(feature = "tls"))]
        assert_eq!(
            Target::single("rediss://h:1").err(),
            Some(TargetError::TlsNotEnabled)
        );
        assert_eq!(
            Target::cluster::<&str>(&[]).err(),
            Some(TargetError::NoNodes)
        );
        let t = Target::cluster(&["redis://h1:7000", "redis://h2:7001"]).unwrap();
        assert!(t.is_cluster());
        assert_eq!(t.options(), ConnectOptions::new());
    }

    #[test]
    fn targets_never_show_a_password() {
        let t = Target::single("redis://user:s3cret@127.0.0.1:6379/").unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
        let t = Target::cluster(&["redis://:p@ss@h1:7000", "redis://:p@ss@h2:7001"]).unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("p@ss"), "{shown}");
        let e = Target::single("redis://:s3cret@[bad").err().unwrap();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn timeouts_are_connection_errors() {
        assert!(is_connection_error(&timeout_error()));
        let refused: redis::RedisError = TargetError::NoNodes.into();
        assert!(!is_connection_error(&refused));
    }
}
