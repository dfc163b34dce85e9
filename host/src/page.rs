//! The admin page: static HTML/CSS/JS embedded in the binary, calling the same API as
//! everyone else. No build step.

use axum::http::header;
use axum::response::IntoResponse;

/// `GET /`: the page.
pub async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], include_str!("../assets/index.html"))
}
