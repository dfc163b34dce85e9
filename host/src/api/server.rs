//! The HTTP server: the router on hyper's HTTP/1 connections, with the bounds on slow and
//! numerous clients that `axum::serve` does not offer: a header read timeout, a deadline for
//! each request's body, and a cap on open connections. Shuts down gracefully as
//! `axum::serve` does: on the signal it stops accepting, lets requests in flight finish and
//! returns once every connection is closed.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONNECTION, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::config::HttpLimits;

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then waits for the
/// open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.body_timeout,
        body_deadline,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Gives the request's body until `limit` after its headers; a handler whose body read ran
/// out of time gets its answer replaced by a 408 that closes the connection.
async fn body_deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = tokio::time::Instant::now() + limit;
    let flag = expired.clone();
    let request = request.map(|body| {
        let stream = body.into_data_stream();
        Body::from_stream(futures_util::stream::unfold(Some(stream), move |stream| {
            let flag = flag.clone();
            async move {
                let mut stream = stream?;
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(chunk)) => Some((chunk, Some(stream))),
                    Ok(None) => None,
                    Err(_) => {
                        flag.store(true, Ordering::Relaxed);
                        Some((Err(axum::Error::new("request body timeout")), None))
                    }
                }
            }
        }))
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    let message = format!(
        "the request body did not arrive within {} s",
        limit.as_secs()
    );
    let mut response = ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", message)
        .at("body")
        .into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
