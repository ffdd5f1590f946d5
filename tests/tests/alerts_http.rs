//! The built-in HTTP alert notifiers (features `webhook` and `telegram`) against a real HTTP
//! server on a loopback port standing in for the webhook receiver and the Telegram Bot API.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use breaker_runtime::{
    Alert, AlertKind, Event, EventKind, FallbackReason, Forced, Notifier, Reason, State,
    TelegramNotifier, WebhookNotifier,
};
use serde_json::Value;

const TOKEN: &str = "123456789:AAHsEcReTtOkEn_do-not-leak";
const SECRET: &str = "AAHsEcReTtOkEn_do-not-leak";
/// Generous: retries of 200 + 400 ms, on a loaded 2-core machine.
const FLUSH: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 server: one request per connection, answered as `reply(n)` says for the n-th
// request (from 0). Every request is recorded before it is answered.

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    content_type: String,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Debug, Clone, Copy)]
enum Reply {
    /// Status, extra header line (or ""), body.
    Status(u16, &'static str, &'static str),
    /// Read the request, never answer (the connection is held open for a minute).
    Hang,
}

struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Server::on(listener, reply)
    }

    fn on(listener: TcpListener, reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reply = Arc::new(reply);
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = Arc::clone(&seen);
                let reply = Arc::clone(&reply);
                std::thread::spawn(move || {
                    let _ = handle(stream, &seen, &*reply);
                });
            }
        });
        Server { addr, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn handle(
    stream: TcpStream,
    seen: &Mutex<Vec<Request>>,
    reply: &(dyn Fn(usize) -> Reply + Send + Sync),
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let (mut length, mut content_type) = (0, String::new());
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("content-type") {
                value.clone_into(&mut content_type);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let n = {
        let mut seen = seen.lock().unwrap();
        seen.push(Request {
            method,
            path: path.clone(),
            content_type,
            body,
        });
        seen.len() - 1
    };
    match reply(n) {
        Reply::Hang => {
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        Reply::Status(code, header, body) => {
            // A receiver that echoes the path back, as some do in their error pages.
            let body = body.replace("{path}", &path);
            let header = if header.is_empty() {
                String::new()
            } else {
                format!("{header}\r\n")
            };
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 {header}connection: close\r\n\r\n{body}",
                body.len()
            )?;
            stream.flush()
        }
    }
}

fn ok(_: usize) -> Reply {
    Reply::Status(200, "", r#"{"ok":true}"#)
}

// ---------------------------------------------------------------------------------------------
// Logs: every test's logs (worker threads included) go to one buffer, checked for the token.

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn logs() -> String {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buf = LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(Arc::clone(&buf));
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("no other subscriber in this test binary");
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Events

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn event(kind: EventKind, injected: bool) -> Event {
    Event {
        breaker: "daum",
        at: at(1_700_000_000_123),
        kind,
        injected,
    }
}

fn opened() -> EventKind {
    EventKind::Alert(Alert {
        id: format!("daum:1796427146042:{}", "opened"),
        receipt: None,
        kind: AlertKind::Opened,
        from: State::Closed,
        to: State::Open,
        failures: 5,
        last_error: Some("connection reset".to_owned()),
        fallback: Some("juso"),
        forced: None,
        shadow: false,
    })
}

fn recovered() -> EventKind {
    EventKind::Alert(Alert {
        id: format!("daum:1796427146042:{}", "recovered"),
        receipt: None,
        kind: AlertKind::Recovered,
        from: State::HalfOpen,
        to: State::Closed,
        failures: 0,
        last_error: None,
        fallback: Some("juso"),
        forced: None,
        shadow: false,
    })
}

fn chain_failed() -> EventKind {
    EventKind::Alert(Alert {
        id: format!("daum:1796427146042:{}", "chain_failed"),
        receipt: None,
        kind: AlertKind::ChainFailed,
        from: State::Open,
        to: State::Open,
        failures: 0,
        last_error: Some("HTTP 503".to_owned()),
        fallback: Some("juso"),
        forced: None,
        shadow: false,
    })
}

fn forced_open() -> EventKind {
    EventKind::Alert(Alert {
        id: format!("daum:1796427146042:{}", "opened"),
        receipt: None,
        kind: AlertKind::Opened,
        from: State::Closed,
        to: State::Open,
        failures: 0,
        last_error: None,
        fallback: None,
        forced: Some(Forced::Open),
        shadow: false,
    })
}

fn store(healthy: bool) -> Event {
    Event {
        breaker: "",
        at: at(1_700_000_000_123),
        kind: EventKind::StoreHealth {
            healthy,
            message: if healthy { "" } else { "connection refused" }.to_owned(),
        },
        injected: false,
    }
}

fn pid_suffix() -> String {
    format!(":{}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn webhook_posts_each_alert_as_json() {
    let server = Server::start(ok);
    let n = WebhookNotifier::new(&server.url("/hooks/T0/s3cr3t-path?sig=abc")).unwrap();
    n.notify(&event(opened(), true));
    n.notify(&event(recovered(), false));
    n.notify(&event(chain_failed(), false));
    n.notify(&event(forced_open(), false));
    n.notify(&store(false));
    n.notify(&store(true));
    assert!(n.flush(FLUSH));
    assert_eq!((n.delivered(), n.failed(), n.dropped()), (6, 0, 0));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 6);
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hooks/T0/s3cr3t-path?sig=abc");
        assert_eq!(r.content_type, "application/json");
    }

    let j = reqs[0].json();
    assert_eq!(j["breaker"], "daum");
    assert_eq!(j["kind"], "opened");
    assert_eq!(
        j["id"], "daum:1796427146042:opened",
        "the alert's stable id"
    );
    assert_eq!(j["from"], "closed");
    assert_eq!(j["to"], "open");
    assert_eq!(j["failures"], 5);
    assert_eq!(j["last_error"], "connection reset");
    assert_eq!(j["fallback"], "juso");
    assert_eq!(j["forced"], Value::Null);
    assert_eq!(j["timestamp"], "2023-11-14T22:13:20.123Z");
    assert_eq!(j["timestamp_ms"], 1_700_000_000_123_u64);
    assert_eq!(j["injected"], true);
    let instance = j["instance"].as_str().unwrap();
    assert!(instance.ends_with(&pid_suffix()) && instance.len() > pid_suffix().len());
    assert_eq!(
        j["message"],
        "🔴 daum opened after 5 failures (last error: connection reset); juso now serves [injected]"
    );
    assert_eq!(j["text"], j["message"]);

    let j = reqs[1].json();
    assert_eq!(j["kind"], "recovered");
    assert_eq!(
        (&j["from"], &j["to"]),
        (&"half_open".into(), &"closed".into())
    );
    assert_eq!(j["last_error"], Value::Null);
    assert_eq!(j["injected"], false);
    assert_eq!(j["message"], "🟢 daum recovered");

    let j = reqs[2].json();
    assert_eq!(j["kind"], "chain_failed");
    assert_eq!(j["last_error"], "HTTP 503");
    assert_eq!(
        j["message"],
        "⚠️ every provider failed behind daum (juso: HTTP 503)"
    );

    let j = reqs[3].json();
    assert_eq!(j["kind"], "opened");
    assert_eq!(j["forced"], "open");
    assert_eq!(j["fallback"], Value::Null);
    assert_eq!(
        j["message"],
        "🔴 daum opened by an operator; calls are rejected"
    );

    for (r, kind) in reqs[4..].iter().zip(["store_down", "store_up"]) {
        let j = r.json();
        assert_eq!(j["kind"], kind);
        assert_eq!(j["breaker"], Value::Null);
        for field in ["from", "to", "failures", "last_error", "fallback", "forced"] {
            assert_eq!(j[field], Value::Null, "{field}");
        }
        assert_eq!(j["timestamp_ms"], 1_700_000_000_123_u64);
    }
    let down = reqs[4].json();
    assert_eq!(down["detail"], "connection refused");
    let text = down["message"].as_str().unwrap();
    assert!(text.starts_with("⚠️ Redis unreachable from "), "{text}");
    assert!(text.contains(&pid_suffix()), "{text}");
    assert!(
        text.ends_with("; breakers decide locally (connection refused)"),
        "{text}"
    );
    let up = reqs[5].json();
    assert!(
        up["message"]
            .as_str()
            .unwrap()
            .starts_with("🟢 Redis reachable again from "),
        "{up}"
    );

    let shown = format!("{n:?}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("sig=abc"),
        "{shown}"
    );
    assert!(shown.contains(&server.url("/…")), "{shown}");
}

#[test]
fn telegram_sends_messages_under_the_api_prefix() {
    let server = Server::start(ok);
    let n = TelegramNotifier::new(TOKEN, "-1001234567890")
        .unwrap()
        .api(&server.url("/tg/prefix/"))
        .unwrap();
    n.notify(&event(opened(), false));
    n.notify(&event(recovered(), true));
    n.notify(&event(chain_failed(), false));
    n.notify(&store(false));
    let channel = TelegramNotifier::new(TOKEN, "@ops_alerts")
        .unwrap()
        .api(&server.url(""))
        .unwrap();
    channel.notify(&event(recovered(), false));
    assert!(n.flush(FLUSH) && channel.flush(FLUSH));
    assert_eq!((n.delivered(), n.failed(), n.dropped()), (4, 0, 0));
    assert_eq!(channel.delivered(), 1);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 5);
    let (mine, theirs): (Vec<_>, Vec<_>) = reqs.iter().partition(|r| r.path.starts_with("/tg/"));
    for r in &mine {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, format!("/tg/prefix/bot{TOKEN}/sendMessage"));
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.json()["chat_id"], -1_001_234_567_890_i64);
    }
    let texts: Vec<String> = mine
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        texts[..3],
        [
            "🔴 daum opened after 5 failures (last error: connection reset); juso now serves",
            "🟢 daum recovered [injected]",
            "⚠️ every provider failed behind daum (juso: HTTP 503)",
        ]
    );
    assert!(
        texts[3].starts_with("⚠️ Redis unreachable from "),
        "{}",
        texts[3]
    );
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(theirs[0].json()["chat_id"], "@ops_alerts");
    assert_eq!(theirs[0].json()["text"], "🟢 daum recovered");
}

#[test]
fn only_alerts_and_store_health_are_delivered() {
    let server = Server::start(ok);
    let hook = WebhookNotifier::new(&server.url("/hook")).unwrap();
    let tg = TelegramNotifier::new(TOKEN, "42")
        .unwrap()
        .api(&server.url("/tg"))
        .unwrap();
    let ignored = [
        EventKind::Transition {
            from: State::Closed,
            to: State::Open,
            reason: Reason::Threshold { failures: 5 },
            open_for: Some(Duration::from_secs(30)),
            forced: None,
        },
        EventKind::Transition {
            from: State::Open,
            to: State::HalfOpen,
            reason: Reason::Threshold { failures: 5 },
            open_for: None,
            forced: None,
        },
        EventKind::Rejected {
            retry_after: Some(Duration::from_secs(1)),
        },
        EventKind::Fallback {
            reason: FallbackReason::TimedOut,
        },
        EventKind::ConfigRejected {
            message: "bad".to_owned(),
        },
        EventKind::StoreError {
            message: "foreign data".to_owned(),
        },
    ];
    for kind in ignored {
        hook.notify(&event(kind.clone(), false));
        tg.notify(&event(kind, true));
    }
    assert!(hook.flush(FLUSH) && tg.flush(FLUSH));
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    hook.notify(&event(opened(), false));
    tg.notify(&event(opened(), false));
    assert!(hook.flush(FLUSH) && tg.flush(FLUSH));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(hook.delivered() + tg.delivered(), 2);
    assert_eq!(
        hook.dropped() + tg.dropped() + hook.failed() + tg.failed(),
        0
    );
}

#[test]
fn server_errors_and_429_are_retried_until_delivered() {
    let server = Server::start(|n| match n {
        0 | 1 => Reply::Status(503, "", "{}"),
        _ => Reply::Status(200, "", "{}"),
    });
    let n = WebhookNotifier::new(&server.url("/hook")).unwrap();
    let start = Instant::now();
    n.notify(&event(opened(), false));
    assert!(n.flush(FLUSH));
    // Backoff: 200 ms, then 400 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.requests().len(), 3);
    assert_eq!((n.delivered(), n.failed()), (1, 0));

    let server = Server::start(|n| match n {
        0 => Reply::Status(429, "retry-after: 1", r#"{"ok":false,"error_code":429}"#),
        _ => Reply::Status(200, "", "{}"),
    });
    let n = TelegramNotifier::new(TOKEN, "42")
        .unwrap()
        .api(&server.url(""))
        .unwrap();
    let start = Instant::now();
    n.notify(&event(opened(), false));
    assert!(n.flush(FLUSH));
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.requests().len(), 2);
    assert_eq!((n.delivered(), n.failed()), (1, 0));
}

#[test]
fn a_refused_connection_is_retried_until_the_receiver_appears() {
    let _ = logs();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let n = TelegramNotifier::new(TOKEN, "42")
        .unwrap()
        .api(&format!("http://{addr}/api"))
        .unwrap();
    let shown = format!("url=http://{addr}/api/bot<redacted>/sendMessage");
    let refused = || {
        logs()
            .lines()
            .any(|l| l.contains("will retry") && l.contains(&shown) && l.contains("refused"))
    };
    n.notify(&event(opened(), false));
    // Wait for a refused attempt to be logged (the next one is 200 ms later), then listen.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !refused() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(refused(), "{}", logs());
    assert_eq!((n.delivered(), n.failed()), (0, 0));
    let server = Server::on(TcpListener::bind(addr).unwrap(), ok);
    assert!(n.flush(FLUSH));
    assert_eq!((n.delivered(), n.failed()), (1, 0));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        server.requests()[0].path,
        format!("/api/bot{TOKEN}/sendMessage")
    );
    let logs = logs();
    assert!(!logs.contains(SECRET), "{logs}");
}

#[test]
fn client_errors_are_not_retried_and_the_token_stays_out_of_the_logs() {
    let _ = logs();
    let server = Server::start(|_| {
        Reply::Status(
            400,
            "",
            r#"{"ok":false,"description":"Bad Request: chat not found at {path}"}"#,
        )
    });
    let n = TelegramNotifier::new(TOKEN, "42")
        .unwrap()
        .api(&server.url(""))
        .unwrap();
    n.notify(&event(opened(), false));
    assert!(n.flush(FLUSH));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.requests().len(), 1, "a 400 is not retried");
    assert_eq!((n.delivered(), n.failed(), n.dropped()), (0, 1, 0));
    let logs = logs();
    assert!(logs.contains("alert not delivered"), "{logs}");
    assert!(
        logs.contains("chat not found at /bot<redacted>/sendMessage"),
        "{logs}"
    );
    assert!(!logs.contains(SECRET), "{logs}");

    let shown = format!("{n:?}");
    assert!(
        !shown.contains(SECRET) && shown.contains("<redacted>"),
        "{shown}"
    );
    for e in [
        TelegramNotifier::new(&format!("{TOKEN}/x"), "42").unwrap_err(),
        TelegramNotifier::new(&format!("{TOKEN} x"), "42").unwrap_err(),
        TelegramNotifier::new(TOKEN, "").unwrap_err(),
        TelegramNotifier::new(TOKEN, "42")
            .unwrap()
            .api("not a url")
            .unwrap_err(),
        TelegramNotifier::new(TOKEN, "42")
            .unwrap()
            .api("ftp://host")
            .unwrap_err(),
        WebhookNotifier::new("/relative/s3cr3t").unwrap_err(),
        WebhookNotifier::new("mailto:s3cr3t@example.com").unwrap_err(),
    ] {
        let text = format!("{e} {e:?}");
        assert!(!text.contains(SECRET) && !text.contains("s3cr3t"), "{text}");
    }
}

#[test]
fn a_hanging_receiver_never_slows_notify_and_overflow_is_counted() {
    let server = Server::start(|_| Reply::Hang);
    let n = WebhookNotifier::new(&server.url("/hang")).unwrap();
    let alert = event(opened(), false);
    let start = Instant::now();
    for _ in 0..2000 {
        n.notify(&alert);
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(200),
        "2000 notify() took {took:?}"
    );
    // One alert in flight, 1024 queued, the rest dropped.
    assert!(n.dropped() >= 2000 - 1025, "dropped {}", n.dropped());
    assert!(n.dropped() <= 2000 - 1024, "dropped {}", n.dropped());
    assert_eq!((n.delivered(), n.failed()), (0, 0));
    assert!(
        !n.flush(Duration::from_millis(50)),
        "the worker is stuck on the hanging receiver"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.requests().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        server.requests().len(),
        1,
        "the receiver got the first alert"
    );
}

// ---------------------------------------------------------------------------------------------
// What a provider's error puts into an alert, end to end: a breaker whose function fails with
// hostile text, the runtime's alert, both notifiers.

#[derive(Debug)]
struct Hostile(String);

impl std::fmt::Display for Hostile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<breaker_runtime::BreakerError> for Hostile {
    fn from(e: breaker_runtime::BreakerError) -> Self {
        Hostile(e.to_string())
    }
}

/// What a provider (or whoever is behind it) may answer: Slack's `<!channel>` mention, markup,
/// an ANSI escape, then 10,000 characters.
fn hostile_error() -> String {
    format!("<!channel> & <b>x</b> \x1b[31m{}", "y".repeat(10_000))
}

#[breaker_runtime::circuit_breaker(name = "alerts.hostile", threshold = 1, open_for = "1h")]
async fn hostile_provider() -> Result<(), Hostile> {
    Err(Hostile(hostile_error()))
}

#[tokio::test]
async fn alert_text_is_escaped_for_chat_receivers_and_bounded() {
    let server = Server::start(ok);
    let hook = Arc::new(WebhookNotifier::new(&server.url("/hook")).unwrap());
    let tg = Arc::new(
        TelegramNotifier::new(TOKEN, "42")
            .unwrap()
            .api(&server.url("/tg"))
            .unwrap(),
    );
    breaker_runtime::add_notifier(hook.clone());
    breaker_runtime::add_notifier(tg.clone());
    assert!(hostile_provider().await.is_err());
    assert!(breaker_runtime::flush_notifications(FLUSH));
    assert_eq!((hook.delivered(), tg.delivered()), (1, 1));
    let reqs = server.requests();
    let posted = reqs.iter().find(|r| r.path == "/hook").unwrap().json();
    let sent = reqs
        .iter()
        .find(|r| r.path.starts_with("/tg/"))
        .unwrap()
        .json();

    // The webhook's human text: `&`, `<`, `>` escaped as Slack reads them (no mention, no
    // markup), controls made visible, the error cut at 300 characters.
    let text = posted["text"].as_str().unwrap();
    assert_eq!(posted["message"], posted["text"]);
    assert!(
        text.starts_with(
            "🔴 alerts.hostile opened after 1 failure (last error: &lt;!channel&gt; &amp; \
             &lt;b&gt;x&lt;/b&gt; \\u{1b}[31myyy"
        ),
        "{text}"
    );
    assert!(text.ends_with("yyy…); calls are rejected"), "{text}");
    assert!(!text.contains(['<', '>', '\x1b']), "{text}");
    assert!(
        text.chars().count() < 400,
        "{} characters",
        text.chars().count()
    );
    // The structured field keeps the text as it is (JSON escapes it), cut to 300 characters.
    let last_error = posted["last_error"].as_str().unwrap();
    let raw = hostile_error();
    let cut: String = raw.chars().take(300).collect();
    assert_eq!(last_error, format!("{cut}…"));

    // Telegram's text is plain (no `parse_mode`): nothing to escape but the controls; bounded.
    assert_eq!(sent["parse_mode"], Value::Null, "{sent}");
    let text = sent["text"].as_str().unwrap();
    assert!(
        text.contains("(last error: <!channel> & <b>x</b> \\u{1b}[31myyy"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b') && text.ends_with("yyy…); calls are rejected"),
        "{text}"
    );
    assert!(
        text.chars().count() < 400,
        "{} characters",
        text.chars().count()
    );
}

// ---------------------------------------------------------------------------------------------
// The Telegram API base: HTTPS, or plain HTTP on this machine only; its credentials never shown.

#[test]
fn telegram_api_must_be_https_unless_on_loopback() {
    let make = || TelegramNotifier::new(TOKEN, "42").unwrap();
    for good in [
        "https://api.telegram.org",
        "https://tg.example.com:8443/prefix/",
        "http://127.0.0.1:8081",
        "http://127.9.9.9/bot-api",
        "http://localhost:8081/x",
        "http://LOCALHOST:1",
        "http://[::1]:8081",
    ] {
        assert!(make().api(good).is_ok(), "{good}");
    }
    for bad in [
        "http://api.telegram.org",
        "http://10.0.0.5:8081",
        "http://[::2]:1",
        "http://localhost.example.com",
        "http://127.0.0.1.example.com",
    ] {
        let e = make().api(bad).unwrap_err();
        assert_eq!(e.setting(), "BREAKER_TELEGRAM_API", "{bad}");
        let text = e.to_string();
        assert!(text.contains("https"), "{bad}: {text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[test]
fn telegram_credentials_never_show_in_debug_or_logs() {
    let _ = logs();
    const PASSWORD: &str = "pr0xy-pa55word";
    // Nothing listens there: every attempt fails and is logged, with the URL.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let n = TelegramNotifier::new(TOKEN, "42")
        .unwrap()
        .api(&format!("http://proxyuser:{PASSWORD}@{addr}/api"))
        .unwrap();
    let shown = format!("{n:?} {n:#?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains(PASSWORD) && !shown.contains("proxyuser"),
        "{shown}"
    );
    assert!(shown.contains(&addr.to_string()), "{shown}");
    n.notify(&event(opened(), false));
    let deadline = Instant::now() + Duration::from_secs(20);
    let tried = || {
        logs()
            .lines()
            .any(|l| l.contains("will retry") && l.contains(&addr.to_string()))
    };
    while !tried() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(tried(), "{}", logs());
    let logs = logs();
    assert!(!logs.contains(SECRET), "{logs}");
    assert!(!logs.contains(PASSWORD), "{logs}");
}
