//! A deadline for receiving a request's body (`server.body_read_timeout_secs`): a client that trickles
//! its body is answered 408 `request_timeout` and disconnected instead of holding a connection open.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{
    Error, HttpMessage,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    error::PayloadError,
    http::header,
    middleware::Next,
    web,
};
use futures_util::Stream;
use tokio::time::Sleep;

use crate::state::AppState;

/// What a body read past its deadline fails with; [`is_body_timeout`] recognises it.
const TIMED_OUT: &str = "the request body was not received in time";

pub async fn limit(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // Only a declared body is timed: a websocket upgrade's payload is its frame stream, which lives
    // as long as the session, and a request without a body has nothing to wait for.
    let declares_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if let Some(state) = req
        .app_data::<web::Data<AppState>>()
        .filter(|_| declares_body && !req.headers().contains_key(header::UPGRADE))
    {
        let within = Duration::from_secs(state.settings.server.body_read_timeout_secs.max(1));
        let payload = req.take_payload();
        req.set_payload(Payload::Stream {
            payload: Box::pin(Deadline {
                inner: payload,
                deadline: Box::pin(tokio::time::sleep(within)),
                expired: false,
            }),
        });
    }
    next.call(req).await
}

/// Whether `error` is a body read that ran past its deadline.
pub fn is_body_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == io::ErrorKind::TimedOut)
}

struct Deadline {
    inner: Payload,
    deadline: Pin<Box<Sleep>>,
    expired: bool,
}

impl Stream for Deadline {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                TIMED_OUT,
            )))));
        }
        Poll::Pending
    }
}
