//! `/metrics` and the middleware that counts every HTTP request; the figures themselves are
//! kept by [`crate::metrics`].

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;

/// Middleware: counts every request by method, matched route (`unmatched` when no route
/// matched) and status.
pub async fn track_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m,
        _ => "other",
    }
    .to_string();
    let response = next.run(req).await;
    state
        .metrics
        .record_http(&method, &route, response.status().as_u16());
    response
}

/// `GET /metrics`: the counters in Prometheus text format 0.0.4.
pub async fn serve(State(state): State<AppState>) -> Response {
    let body = state
        .metrics
        .render(state.plugins.list().len(), &state.plugins.all_headroom());
    Response::builder()
        .header(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(axum::body::Body::from(body))
        .expect("a valid response")
}
