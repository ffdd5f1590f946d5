//! The admin API, behind the bearer token: the breakers, one handler per action, and the mock
//! providers' modes.

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use super::App;
use super::auth::require_token;

mod actions;
mod body;
mod breakers;
mod providers;

pub use actions::{ActionReply, DEFAULT_FAULT_FOR, MAX_NOTICE_CHARS};
pub use breakers::{BreakerView, BulkheadView, CountersView, view};
pub use providers::ProviderView;

/// The admin routes, each guarded by the token.
pub(super) fn routes(app: App) -> Router<App> {
    Router::new()
        .route("/api/admin/breakers", get(breakers::list))
        .route("/api/admin/breakers/{name}/open", post(actions::open))
        .route("/api/admin/breakers/{name}/close", post(actions::close))
        .route("/api/admin/breakers/{name}/reset", post(actions::reset))
        .route("/api/admin/breakers/{name}/swap", post(actions::swap))
        .route("/api/admin/breakers/{name}/shadow", post(actions::shadow))
        .route("/api/admin/breakers/{name}/inject", post(actions::inject))
        .route("/api/admin/breakers/{name}/notice", post(actions::notice))
        // Any other action: 404 naming the known ones (the static segments above win).
        .route(
            "/api/admin/breakers/{name}/{action}",
            post(actions::unknown),
        )
        .route("/api/admin/providers", get(providers::list))
        .route("/api/admin/providers/{name}", post(providers::set_mode))
        .route_layer(middleware::from_fn_with_state(app, require_token))
}
