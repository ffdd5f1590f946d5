//! The pages and their assets, compiled into the binary (no build step): plain HTML, one
//! stylesheet, a little JavaScript.

/// `GET /`: the search page.
pub(crate) const INDEX: &str = include_str!("../static/index.html");
/// `GET /admin`: the emergency admin console.
pub(crate) const ADMIN: &str = include_str!("../static/admin.html");
/// `GET /static/style.css`.
pub(crate) const STYLE: &str = include_str!("../static/style.css");
/// `GET /static/search.js`.
pub(crate) const SEARCH_JS: &str = include_str!("../static/search.js");
/// `GET /static/admin.js`.
pub(crate) const ADMIN_JS: &str = include_str!("../static/admin.js");
