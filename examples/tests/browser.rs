//! The address-search service in a real browser: headless Chromium, driven through chromedriver
//! (WebDriver, `fantoccini`), against the real `address-search` binary on a free port.
//!
//! The story a person would click through: search (the primary, daum, answers); take daum down
//! from the admin console's "Mock providers" panel; search again and get the secondary's (juso)
//! results with no error, until daum's breaker opens; set an emergency notice and take juso down
//! too; search and read the notice in the banner, still with no error; bring both providers back,
//! reset the breakers and clear the notice; search and get daum's results again.
//!
//! Each step leaves a screenshot in the target's test temp directory (`screenshots/`), or in
//! `$SCREENSHOT_DIR` when set: `SCREENSHOT_DIR=docs/screenshots` regenerates the README's
//! pictures (with Hangul when the `fonts-nanum` package is installed). A failure leaves `failure.png` in the target's
//! test temp directory.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages: without them the test fails, it never
//! skips. Every process it starts (the service, chromedriver and the Chromium it launches) is
//! killed when the test ends, whether it passed or panicked.
//!
//! A third test clicks the console's mode controls (shadow on, enforce, declared mode) and checks
//! the mode shown in the row and the mode on the server.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::json;

mod common;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "apt-get install chromium chromium-driver";
/// The admin token the service is started with and the test types into the console.
const TOKEN: &str = "browser-test-token-5f1c";
/// How long any one expected change may take to show in the page.
const DEADLINE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);
/// The emergency notice an operator sets before the secondary goes down too.
const NOTICE: &str = concat!(
    "주소 검색 점검 중입니다. 주소를 직접 입력해 주세요 · ",
    "Address search is down for maintenance: please type your address by hand."
);
/// The banner's text while the secondary serves.
const DEGRADED: &str = "backup provider";
/// Failures in the window that open a provider's breaker (`threshold = 3`).
const THRESHOLD: usize = 3;

/// The browser tests run one at a time: each starts its own service, chromedriver and
/// Chromium, and the story's timings should not share two cores with another browser.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_fails_over_shows_the_notice_and_recovers_in_chromium() {
    let shots = screenshot_dir();
    eprintln!("screenshots in {}", shots.display());
    in_chromium(&[], move |c, base| story(c, base, shots)).await;
}

/// Markup from a provider (an address) and from an operator (a notice) shows as text on the
/// search page and in the console: no element is created from it, no script of it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_an_address_and_in_a_notice_shows_as_text_in_chromium() {
    let stub = MarkupProvider::start().await;
    let daum = stub.url.clone();
    in_chromium(&["--daum-url", &daum], markup_steps).await;
}

/// The console's mode controls: "shadow on", "enforce" and "declared mode" switch a breaker's
/// mode on the server, and its row shows the mode in force, marked "(operator)" while set there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_controls_switch_a_breakers_mode_in_chromium() {
    in_chromium(&[], shadow_steps).await;
}

/// Starts the service (with `extra` arguments), chromedriver and a WebDriver session, runs
/// `steps` with the session and the service's base URL, then ends the session and stops them.
async fn in_chromium<F, Fut>(extra: &[&str], steps: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _one = ONE_BROWSER.lock().await;
    let started = Instant::now();
    require(CHROMIUM, "chromium");
    require(CHROMEDRIVER, "chromedriver");

    // Dropped in reverse order: chromedriver's process group, then its profile, then the service.
    let (_service, base) = start_service(extra);
    let profile = TempDir::new("address-search-browser-profile");
    let (_driver, driver_url) = start_chromedriver();
    let client = connect(&driver_url, &profile.0).await;
    eprintln!("service at {base}, chromedriver at {driver_url}");

    // The steps run in their own task so that a failed assertion still ends the WebDriver
    // session (Chromium quits cleanly) and leaves a screenshot of where it stopped.
    let outcome = tokio::spawn(steps(client.clone(), base)).await;
    if outcome.is_err() {
        let failure = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failure.png");
        if let Ok(png) = client.screenshot().await
            && std::fs::write(&failure, png).is_ok()
        {
            eprintln!("screenshot at the failure: {}", failure.display());
        }
    }
    let closed = client.close().await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
    closed.expect("ending the WebDriver session");
    eprintln!(
        "browser test passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// An address as a hostile or broken provider might send it: markup that would create an element
/// (and run a script, setting the title) if the page parsed it as HTML.
const MARKUP_ADDRESS: &str =
    r#"서울 강남구 <img id="injected-address" src="x" onerror="document.title='pwned'"> 152"#;
/// A notice with markup, as an operator might paste it.
const MARKUP_NOTICE: &str = r#"<b id="injected-notice">점검 중</b><script>document.title='pwned'</script> · down for maintenance"#;

/// A daum-like provider on loopback whose every answer is one address with markup.
struct MarkupProvider {
    url: String,
    _task: tokio::task::JoinHandle<()>,
}

impl MarkupProvider {
    async fn start() -> MarkupProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the markup provider");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let answer = json!({
            "meta": {"total_count": 1},
            "documents": [{
                "address_name": MARKUP_ADDRESS,
                "road_address": {"address_name": MARKUP_ADDRESS, "zone_no": "06236", "building_name": "<i>tower</i>"},
                "address": {"address_name": "서울 강남구 역삼동 737"},
            }],
        });
        let router = axum::Router::new().fallback(move || {
            let answer = answer.clone();
            async move { axum::Json(answer) }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        MarkupProvider { url, _task: task }
    }
}

/// Whether the page has an element the markup would have made, or ran its script.
const INJECTED_JS: &str = r##"
return {
  elements: document.querySelectorAll('#injected-address, #injected-notice, img[src="x"]').length
    + [...document.querySelectorAll("i, b")].filter((e) => e.textContent === "tower" || e.textContent === "점검 중").length,
  title: document.title,
};
"##;

async fn assert_nothing_injected(c: &Client, page: &str) {
    let found = c
        .execute(INJECTED_JS, vec![])
        .await
        .expect("looking for injected markup");
    assert_eq!(
        found["elements"],
        json!(0),
        "{page}: an element was made from markup: {found}"
    );
    assert_ne!(
        found["title"],
        json!("pwned"),
        "{page}: a script from markup ran"
    );
}

async fn markup_steps(c: Client, base: String) {
    // The address: shown with its markup as characters.
    goto(&c, &format!("{base}/")).await;
    search(&c, "테헤란로 152", Submit::Button).await;
    let page = wait_page(&c, "the provider's address", |p| !p.results.is_empty()).await;
    assert!(
        page.results[0].contains(r#"<img id="injected-address""#)
            && page.results[0].contains("<i>tower</i>"),
        "the markup shows as text: {page:#?}"
    );
    assert_nothing_injected(&c, "the search page with the address").await;

    // The notice, set through the admin API; both breakers forced open so that users read it.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let admin = |path: &str, body: serde_json::Value| {
        http.post(format!("{base}/api/admin/breakers/{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    for (path, body) in [
        ("provider.juso/notice", json!({ "text": MARKUP_NOTICE })),
        ("provider.daum/open", json!({})),
        ("provider.juso/open", json!({})),
    ] {
        let response = admin(path, body).await.expect("an admin request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
    goto(&c, &format!("{base}/")).await;
    search(&c, "테헤란로 152", Submit::Button).await;
    wait_page(&c, "the notice with its markup as text", |p| {
        p.banner
            .as_deref()
            .is_some_and(|b| b.contains(MARKUP_NOTICE))
    })
    .await;
    assert_nothing_injected(&c, "the search page with the notice").await;

    // The console shows the notice as text too.
    open_admin(&c, &base).await;
    wait_admin(&c, "the notice in provider.juso's row", |a| {
        a.breakers
            .iter()
            .any(|b| b.name == "provider.juso" && b.notice.contains(MARKUP_NOTICE))
    })
    .await;
    assert_nothing_injected(&c, "the console").await;
}

/// `(shadow, shadow_override)` of `name` in the service's breakers JSON.
async fn server_mode(base: &str, name: &str) -> (serde_json::Value, serde_json::Value) {
    let list: Vec<serde_json::Value> = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
        .get(format!("{base}/api/admin/breakers"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("GET /api/admin/breakers")
        .json()
        .await
        .expect("the breakers JSON");
    let b = list
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("{name} in the breakers JSON: {list:?}"));
    (b["shadow"].clone(), b["shadow_override"].clone())
}

async fn shadow_steps(c: Client, base: String) {
    const DAUM: &str = "provider.daum";
    let row = format!(r#"#breakers tr[data-breaker="{DAUM}"]"#);
    open_admin(&c, &base).await;
    wait_breaker_mode(&c, DAUM, "enforce").await;
    wait_breaker_mode(&c, "provider.juso", "enforce").await;

    // (button, the status it reports, the mode shown, (shadow, shadow_override) on the server)
    let steps = [
        (
            "shadow-on",
            "in shadow mode",
            "shadow (operator)",
            (json!(true), json!(true)),
        ),
        (
            "enforce",
            "enforcing",
            "enforce (operator)",
            (json!(false), json!(false)),
        ),
        (
            "shadow-on",
            "in shadow mode",
            "shadow (operator)",
            (json!(true), json!(true)),
        ),
        (
            "declared-mode",
            "back to its declared mode: enforce",
            "enforce",
            (json!(false), serde_json::Value::Null),
        ),
    ];
    for (action, message, shown, on_server) in steps {
        let what = format!("{action} on {DAUM}");
        admin_action(
            &c,
            &format!(r#"{row} button[data-action="{action}"]"#),
            &what,
        )
        .await;
        let a = wait_breaker_mode(&c, DAUM, shown).await;
        assert!(
            a.status.contains(message),
            "{what}: #admin-status = {:?}",
            a.status
        );
        assert_eq!(server_mode(&base, DAUM).await, on_server, "{what}");
        // The other breaker is left alone.
        assert_eq!(
            server_mode(&base, "provider.juso").await,
            (json!(false), serde_json::Value::Null),
            "{what}"
        );
    }
    wait_breaker_mode(&c, "provider.juso", "enforce").await;
}

/// The user's and the operator's steps, with a screenshot after each.
async fn story(c: Client, base: String, shots: PathBuf) {
    let shot = |name: &'static str| full_page_screenshot(c.clone(), shots.join(name));

    // 1. A search: the primary answers, nothing is degraded.
    goto(&c, &format!("{base}/")).await;
    search(&c, "gangnam", Submit::Button).await;
    let page = wait_page(&c, "daum's results", |p| {
        p.source == "daum" && !p.results.is_empty()
    })
    .await;
    assert_eq!(
        page.banner, None,
        "no banner while the primary answers: {page:#?}"
    );
    shot("01-search.png").await;

    // 2. The operator takes daum down from the console's "Mock providers" panel.
    open_admin(&c, &base).await;
    admin_action(
        &c,
        r#"#providers tr[data-provider="daum"] button[data-mode="down"]"#,
        "daum down",
    )
    .await;
    wait_provider_mode(&c, "daum", "down").await;
    c.execute("window.scrollTo(0, 0);", vec![])
        .await
        .expect("scrolling to the top");
    shot("02-admin.png").await;

    // 3. The next search is served by the secondary through the fallback at once (the breaker
    //    is still closed: daum is called, fails fast and juso answers), with no error shown.
    goto(&c, &format!("{base}/")).await;
    search(&c, "teheran", Submit::Enter).await;
    let page = wait_page(&c, "juso's results after daum went down", |p| {
        p.source == "juso" && !p.results.is_empty()
    })
    .await;
    assert_eq!(page.error, None, "no error in failover: {page:#?}");
    let banner = page.banner.as_deref().unwrap_or_default();
    assert!(
        banner.to_lowercase().contains(DEGRADED),
        "the banner says the backup provider serves: {page:#?}"
    );
    shot("03-failover.png").await;
    // Two more failures open daum's breaker (threshold 3); every search still gets juso's results.
    for query in ["busan", "seoul"].iter().take(THRESHOLD - 1) {
        search(&c, query, Submit::Button).await;
        wait_page(&c, "juso's results while daum is down", |p| {
            p.source == "juso" && !p.results.is_empty()
        })
        .await;
    }

    // 4. Both down: the operator sets the notice, then takes juso down too.
    open_admin(&c, &base).await;
    // OPEN (or already HALF_OPEN, should `open_for` have passed on a slow machine): it tripped.
    wait_breaker_state(&c, "provider.daum", &["open", "half_open"]).await;
    let juso_row = r#"#breakers tr[data-breaker="provider.juso"]"#;
    let text = c
        .find(Locator::Css(&format!("{juso_row} .notice-text")))
        .await
        .expect("the notice field in provider.juso's row");
    text.clear().await.expect("clearing the notice field");
    text.send_keys(NOTICE).await.expect("typing the notice");
    admin_action(
        &c,
        &format!(r#"{juso_row} button[data-action="notice"]"#),
        "set the notice",
    )
    .await;
    wait_admin(&c, "the notice in provider.juso's row", |a| {
        a.breakers
            .iter()
            .any(|b| b.name == "provider.juso" && b.notice == NOTICE)
    })
    .await;
    admin_action(
        &c,
        r#"#providers tr[data-provider="juso"] button[data-mode="down"]"#,
        "juso down",
    )
    .await;
    wait_provider_mode(&c, "juso", "down").await;
    goto(&c, &format!("{base}/")).await;
    search(&c, "gangnam", Submit::Button).await;
    let page = wait_page(&c, "the notice in the banner", |p| {
        p.banner.as_deref().is_some_and(|b| b.contains(NOTICE))
    })
    .await;
    assert_eq!(
        page.error, None,
        "no error when both providers are down: {page:#?}"
    );
    shot("04-notice.png").await;
    // The console during the outage: daum's breaker open, juso's notice posted.
    open_admin(&c, &base).await;
    c.execute("window.scrollTo(0, 0);", vec![])
        .await
        .expect("scrolling to the top");
    shot("04b-admin-outage.png").await;

    // 5. Recovery: providers up, breakers reset, notice cleared; daum answers again.
    for provider in ["daum", "juso"] {
        let button = format!(r#"#providers tr[data-provider="{provider}"] button[data-mode="up"]"#);
        admin_action(&c, &button, &format!("{provider} up")).await;
        wait_provider_mode(&c, provider, "up").await;
    }
    for breaker in ["provider.daum", "provider.juso"] {
        let button =
            format!(r#"#breakers tr[data-breaker="{breaker}"] button[data-action="reset"]"#);
        admin_action(&c, &button, &format!("reset {breaker}")).await;
        wait_breaker_state(&c, breaker, &["closed"]).await;
    }
    admin_action(
        &c,
        &format!(r#"{juso_row} button[data-action="clear-notice"]"#),
        "clear the notice",
    )
    .await;
    goto(&c, &format!("{base}/")).await;
    search(&c, "teheran", Submit::Enter).await;
    let page = wait_page(&c, "daum's results after the recovery", |p| {
        p.source == "daum" && !p.results.is_empty()
    })
    .await;
    assert_eq!(
        page.banner, None,
        "no banner once the primary answers again: {page:#?}"
    );
    shot("05-recovered.png").await;
}

// ---------------------------------------------------------------------------------------------
// The search page.

/// What the search page shows; `banner` and `error` are `None` while hidden.
#[derive(Debug, Deserialize)]
struct Page {
    source: String,
    results: Vec<String>,
    banner: Option<String>,
    error: Option<String>,
}

const PAGE_JS: &str = r##"
const q = (s) => document.querySelector(s);
const shown = (el) => !!el && el.checkVisibility({ opacityProperty: true, visibilityProperty: true });
const text = (el) => (el ? el.textContent.trim() : "");
return {
  source: text(q("#source")),
  results: [...document.querySelectorAll("#results li.address")].map(text),
  banner: shown(q("#banner")) ? text(q("#banner")) : null,
  error: shown(q("#error")) ? text(q("#error")) : null,
};
"##;

async fn page(c: &Client) -> Page {
    let value = c
        .execute(PAGE_JS, vec![])
        .await
        .expect("reading the search page");
    serde_json::from_value(value).expect("the search page's state")
}

/// Polls the page until `ready` holds; fails at once if `#error` is ever shown.
async fn wait_page(c: &Client, what: &str, ready: impl Fn(&Page) -> bool) -> Page {
    let start = Instant::now();
    loop {
        let page = page(c).await;
        assert_eq!(
            page.error, None,
            "#error shown while waiting for {what}: {page:#?}"
        );
        if ready(&page) {
            return page;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no {what} within {DEADLINE:?}: {page:#?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[derive(Clone, Copy)]
enum Submit {
    Button,
    Enter,
}

/// Types `query` into `#q` and submits it. The previous answer (`#source`, `#results`) is wiped
/// first, so that a wait afterwards sees this search's answer and not the last one.
async fn search(c: &Client, query: &str, submit: Submit) {
    c.execute(
        r##"document.querySelector("#source").textContent = "";
           document.querySelector("#results").replaceChildren();"##,
        vec![],
    )
    .await
    .expect("clearing the previous answer");
    let input = c
        .find(Locator::Css("#q"))
        .await
        .expect("the search field #q");
    input.clear().await.expect("clearing #q");
    match submit {
        Submit::Button => {
            input.send_keys(query).await.expect("typing the query");
            let button = c
                .find(Locator::Css("#search"))
                .await
                .expect("the #search button");
            button.click().await.expect("clicking #search");
        }
        Submit::Enter => {
            let keys = format!("{query}{}", char::from(Key::Enter));
            input
                .send_keys(&keys)
                .await
                .expect("typing the query and Enter");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The admin console.

/// Opens `/admin`; the first time, types the token (the page keeps it in sessionStorage).
/// Returns once both breakers' rows are listed, which needs an accepted token.
async fn open_admin(c: &Client, base: &str) {
    goto(c, &format!("{base}/admin")).await;
    let field = c
        .find(Locator::Css(TOKEN_FIELD))
        .await
        .expect("the admin console's token field");
    if field
        .prop("value")
        .await
        .expect("the token field's value")
        .as_deref()
        != Some(TOKEN)
    {
        field.clear().await.expect("clearing the token field");
        field.send_keys(TOKEN).await.expect("typing the token");
        // `change` fires on blur.
        field
            .send_keys(&char::from(Key::Tab).to_string())
            .await
            .expect("leaving the token field");
    }
    wait_admin(c, "both breakers listed in #breakers", |a| {
        a.breakers.iter().any(|b| b.name == "provider.daum")
            && a.breakers.iter().any(|b| b.name == "provider.juso")
    })
    .await;
}

const TOKEN_FIELD: &str = "#token";

#[derive(Debug, Deserialize)]
struct Admin {
    status: String,
    breakers: Vec<BreakerRow>,
    providers: Vec<ProviderRow>,
}

#[derive(Debug, Deserialize)]
struct BreakerRow {
    name: String,
    state: String,
    /// `shadow` or `enforce`, then ` (operator)` when an operator set it.
    mode: String,
    notice: String,
}

#[derive(Debug, Deserialize)]
struct ProviderRow {
    name: String,
    mode: String,
}

const ADMIN_JS: &str = r##"
const text = (el) => (el ? el.textContent.trim() : "");
return {
  status: text(document.querySelector("#admin-status")),
  breakers: [...document.querySelectorAll("#breakers tr[data-breaker]")].map((tr) => ({
    name: tr.dataset.breaker,
    state: text(tr.querySelector(".state")),
    mode: text(tr.querySelector(".mode")),
    notice: text(tr.querySelector(".notice")),
  })),
  providers: [...document.querySelectorAll("#providers tr[data-provider]")].map((tr) => ({
    name: tr.dataset.provider,
    mode: text(tr.querySelector(".mode")),
  })),
};
"##;

async fn admin(c: &Client) -> Admin {
    let value = c
        .execute(ADMIN_JS, vec![])
        .await
        .expect("reading the admin console");
    serde_json::from_value(value).expect("the admin console's state")
}

async fn wait_admin(c: &Client, what: &str, ready: impl Fn(&Admin) -> bool) -> Admin {
    let start = Instant::now();
    loop {
        let admin = admin(c).await;
        if ready(&admin) {
            return admin;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no {what} within {DEADLINE:?}: {admin:#?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Clicks an admin button and waits for `#admin-status` to report the result, which must not be
/// an error.
async fn admin_action(c: &Client, selector: &str, what: &str) {
    c.execute(
        r##"document.querySelector("#admin-status").textContent = "";"##,
        vec![],
    )
    .await
    .expect("clearing #admin-status");
    let button = c
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("the button for {what} ({selector}): {e}"));
    button
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {what}: {e}"));
    let admin = wait_admin(c, &format!("#admin-status after {what}"), |a| {
        !a.status.is_empty()
    })
    .await;
    assert!(
        !admin.status.to_lowercase().contains("error"),
        "{what} failed: #admin-status = {:?}",
        admin.status
    );
}

async fn wait_provider_mode(c: &Client, provider: &str, mode: &str) {
    wait_admin(
        c,
        &format!("mock provider {provider} in mode {mode}"),
        |a| {
            a.providers
                .iter()
                .any(|p| p.name == provider && p.mode.eq_ignore_ascii_case(mode))
        },
    )
    .await;
}

async fn wait_breaker_state(c: &Client, breaker: &str, states: &[&str]) {
    wait_admin(c, &format!("breaker {breaker} in {states:?}"), |a| {
        a.breakers
            .iter()
            .any(|b| b.name == breaker && states.iter().any(|s| b.state.eq_ignore_ascii_case(s)))
    })
    .await;
}

/// Waits until `breaker`'s row shows the mode `shown` exactly.
async fn wait_breaker_mode(c: &Client, breaker: &str, shown: &str) -> Admin {
    wait_admin(c, &format!("breaker {breaker} in mode {shown:?}"), |a| {
        a.breakers
            .iter()
            .any(|b| b.name == breaker && b.mode == shown)
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Processes and the browser.

/// The viewport's size for screenshots; a taller page is captured whole.
const VIEWPORT: (u32, u32) = (1280, 900);

/// Writes a PNG of the whole page to `path`: the window grows for the shot so that everything
/// down to the page's end is in the viewport, then it is put back.
async fn full_page_screenshot(c: Client, path: PathBuf) {
    let measure = "return [window.innerWidth, window.innerHeight, \
                   document.documentElement.scrollHeight, window.scrollY];";
    let size = c.get_window_size().await.expect("the window's size");
    let [inner_w, inner_h, page_h, scroll_y] = serde_json::from_value::<[u64; 4]>(
        c.execute(measure, vec![])
            .await
            .expect("measuring the page"),
    )
    .expect("four numbers");
    let (frame_w, frame_h) = (
        size.0.saturating_sub(inner_w),
        size.1.saturating_sub(inner_h),
    );
    let height = u64::from(VIEWPORT.1).max(page_h.saturating_sub(scroll_y));
    let to_u32 = |n: u64| u32::try_from(n).expect("a window size");
    c.set_window_size(
        to_u32(u64::from(VIEWPORT.0) + frame_w),
        to_u32(height + frame_h),
    )
    .await
    .expect("growing the window for a full-page screenshot");
    let png = c.screenshot().await.expect("taking a screenshot");
    c.set_window_size(to_u32(size.0), to_u32(size.1))
        .await
        .expect("restoring the window's size");
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    eprintln!("wrote {}", path.display());
}

async fn goto(c: &Client, url: &str) {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
}

fn require(path: &str, what: &str) {
    assert!(
        Path::new(path).exists(),
        "{what} is missing at {path}: the browser test needs Debian's Chromium and chromedriver; \
         install them with `{INSTALL}`"
    );
}

fn screenshot_dir() -> PathBuf {
    let dir = match std::env::var_os("SCREENSHOT_DIR") {
        Some(dir) => PathBuf::from(dir),
        // Not the README's folder by default: a test run must not rewrite committed files.
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A process the test started, killed when dropped (also while unwinding from a panic).
/// With `group`, the process leads its own process group and the whole group is killed: that is
/// how Chromium, started by chromedriver, goes with it.
struct Proc {
    name: &'static str,
    child: Child,
    group: bool,
    reaped: bool,
}

impl Proc {
    fn spawn(name: &'static str, command: &mut Command, group: bool) -> Self {
        if group {
            std::os::unix::process::CommandExt::process_group(command, 0);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            name,
            child,
            group,
            reaped: false,
        }
    }

    /// Panics if the process has already exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.reaped = true;
            panic!("{} exited early with {status}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Until it is reaped, the leader's pid (= the group's id) cannot be reused.
        if self.group && !self.reaped {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `address-search --port 0` (and `extra`) with the embedded mock providers and in-memory breakers;
/// returns it and its base URL, read from its `address-search listening on URL` line. Its output
/// is forwarded to the test's stderr, prefixed.
fn start_service(extra: &[&str]) -> (Proc, String) {
    let mut command = common::address_search();
    command
        .args(["--port", "0", "--admin-token", TOKEN])
        .args(extra)
        // Its whole log, forwarded: what it did when a step fails.
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut service = Proc::spawn("address-search", &mut command, false);
    let (tx, rx) = mpsc::channel();
    let stdout = service.child.stdout.take().expect("the service's stdout");
    forward("service", stdout, Some(tx));
    let stderr = service.child.stderr.take().expect("the service's stderr");
    forward("service", stderr, None);
    let url = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(url) => url,
        Err(_) => {
            service.assert_running();
            panic!("address-search printed no `address-search listening on URL` line within 30 s");
        }
    };
    (service, url)
}

/// Forwards a child's output line by line to stderr; sends the URL of the listening line.
fn forward(
    prefix: &'static str,
    out: impl Read + Send + 'static,
    url: Option<mpsc::Sender<String>>,
) {
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let (Some(tx), Some(rest)) =
                (&url, line.strip_prefix("address-search listening on "))
            {
                let _ = tx.send(rest.trim().trim_end_matches('/').to_owned());
            }
            eprintln!("[{prefix}] {line}");
        }
    });
}

/// Starts chromedriver on a free loopback port and waits until it accepts connections.
fn start_chromedriver() -> (Proc, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port for chromedriver")
        .port();
    let mut command = Command::new(CHROMEDRIVER);
    command
        .args([format!("--port={port}"), "--log-level=WARNING".to_owned()])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut driver = Proc::spawn("chromedriver", &mut command, true);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        driver.assert_running();
        assert!(
            start.elapsed() < DEADLINE,
            "chromedriver did not listen on port {port}"
        );
        thread::sleep(POLL);
    }
    (driver, format!("http://127.0.0.1:{port}"))
}

async fn connect(driver: &str, profile: &Path) -> Client {
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--window-size=1280,900".to_owned(),
        "--lang=en-US".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("an object literal")
    };
    ClientBuilder::native()
        .capabilities(capabilities)
        .connect(driver)
        .await
        .unwrap_or_else(|e| panic!("starting headless Chromium through chromedriver: {e}"))
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
