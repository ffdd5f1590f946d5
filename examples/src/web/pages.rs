//! The pages and their assets, compiled into the binary (no build step): plain HTML, one
//! stylesheet, a little JavaScript.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::App;

/// `GET /`: the search page.
const INDEX: &str = include_str!("../../static/index.html");
/// `GET /admin`: the emergency admin console.
const ADMIN: &str = include_str!("../../static/admin.html");
/// `GET /static/style.css`.
const STYLE: &str = include_str!("../../static/style.css");
/// `GET /static/search.js`.
const SEARCH_JS: &str = include_str!("../../static/search.js");
/// `GET /static/admin.js`.
const ADMIN_JS: &str = include_str!("../../static/admin.js");

/// The pages' and assets' routes.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/", get(|| async { page(INDEX) }))
        .route("/admin", get(|| async { page(ADMIN) }))
        .route(
            "/static/style.css",
            get(|| async { asset(STYLE, "text/css") }),
        )
        .route(
            "/static/search.js",
            get(|| async { asset(SEARCH_JS, "text/javascript") }),
        )
        .route(
            "/static/admin.js",
            get(|| async { asset(ADMIN_JS, "text/javascript") }),
        )
}

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let kind = HeaderValue::from_str(&format!("{kind}; charset=utf-8"))
        .unwrap_or(HeaderValue::from_static("text/plain"));
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
