//! The admin page: static HTML/CSS/JS embedded in the binary, calling the same API as
//! everyone else. No build step, nothing fetched from elsewhere (icons are inline SVG).

use axum::http::header;
use axum::response::IntoResponse;

/// The page shell.
const INDEX: &str = include_str!("../../assets/index.html");
/// The stylesheet.
const CSS: &str = include_str!("../../assets/app.css");
/// The script.
const JS: &str = include_str!("../../assets/app.js");

/// Headers every asset gets: its type, no caching across upgrades (the assets are small and
/// change with the binary), and no sniffing.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

/// `GET /`: the page.
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        INDEX,
    )
}

/// `GET /assets/app.css`.
pub async fn css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /assets/app.js`.
pub async fn js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", JS)
}
