//! The client's gRPC deadline (`grpc-timeout`) answered with DEADLINE_EXCEEDED.
//!
//! tonic's own server enforces the header too, but answers CANCELLED when it fires; the CRI (and
//! critest's "should timeout if requested") wants DEADLINE_EXCEEDED. This layer sits inside
//! tonic's: it arms its timer before tonic's and is polled first, so when a deadline passes the
//! answer is always ours. Every RPC runs in its own task, so dropping the handler's future here
//! never leaves an operation half done.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

/// Adds [`Deadline`] around a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

/// Answers DEADLINE_EXCEEDED when the request's `grpc-timeout` passes before the handler does.
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The timer starts before the handler (and before tonic's own timer) is created.
        let deadline = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|d| tokio::time::sleep(d));
        let fut = self.inner.call(req);
        match deadline {
            None => Box::pin(fut),
            Some(sleep) => Box::pin(async move {
                tokio::select! {
                    biased;
                    res = fut => res,
                    () = sleep => Ok(tonic::Status::deadline_exceeded(
                        "the client's deadline passed before the call completed",
                    )
                    .into_http()),
                }
            }),
        }
    }
}

/// Parses a `grpc-timeout` value: at most 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse_grpc_timeout("5m"), Some(Duration::from_millis(5)));
        assert_eq!(parse_grpc_timeout("6u"), Some(Duration::from_micros(6)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in ["", "S", "123456789S", "1x", "-1S", "1.5S", "١S", "1١"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_passed_deadline_is_deadline_exceeded() {
        let slow = tower::service_fn(|_req: http::Request<()>| async {
            std::future::pending::<()>().await;
            Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
        });
        let mut svc = DeadlineLayer.layer(slow);
        let req = http::Request::builder()
            .header("grpc-timeout", "1m")
            .body(())
            .expect("request");
        let resp = svc.call(req).await.expect("response");
        let status = tonic::Status::from_header_map(resp.headers()).expect("grpc status");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }

    #[tokio::test]
    async fn no_header_means_no_deadline() {
        let fast = tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
        });
        let mut svc = DeadlineLayer.layer(fast);
        let resp = svc.call(http::Request::new(())).await.expect("response");
        assert!(tonic::Status::from_header_map(resp.headers()).is_none());
    }
}
