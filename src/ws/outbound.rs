//! The response body of a websocket connection, which actix-http writes to the socket. It merges the
//! session task's own frames (replies, pongs, pings and the close frame, encoded by actix-ws) with the
//! events the hub queued for the session, taken straight from that queue: an event goes from the
//! publisher's fan-out to the connection's writer without waking the session task or being encoded
//! again.

use std::{
    error::Error as StdError,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use actix_web::{
    HttpResponse,
    body::{BodySize, BoxBody, MessageBody},
};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{
    hub::{SessionLink, Wire},
    share,
};

/// The body of an upgraded websocket response.
pub struct Outbound {
    /// actix-ws's body: the session task's frames. Its end (after the close frame, or once the session
    /// task is gone) is the end of the connection.
    control: BoxBody,
    /// The hub's queue for this session.
    events: mpsc::Receiver<Wire>,
    link: Arc<SessionLink>,
}

impl Outbound {
    /// Replaces the body of actix-ws's handshake response with one that also writes the session's
    /// queued events.
    pub fn attach(
        response: HttpResponse,
        events: mpsc::Receiver<Wire>,
        link: Arc<SessionLink>,
    ) -> HttpResponse {
        response
            .map_body(|_, control| Outbound {
                control,
                events,
                link,
            })
            .map_into_boxed_body()
    }
}

impl MessageBody for Outbound {
    type Error = Box<dyn StdError>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        // The session's own frames go first: a reply queued before an event was published is written
        // before it.
        if let Poll::Ready(item) = Pin::new(&mut this.control).poll_next(cx) {
            return Poll::Ready(item);
        }
        // Once the session is closing, its close frame is the last thing written; while it handles a
        // command, that command's reply goes before the events it causes.
        if this.link.is_closing() || this.link.held(cx.waker()) {
            return Poll::Pending;
        }
        let read_only = this.link.is_read_only();
        loop {
            match this.events.poll_recv(cx) {
                Poll::Ready(Some(wire)) => {
                    if read_only && !share::may_show(wire.payload()) {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(wire.bytes().clone())));
                }
                // `link` holds the queue's sender, so it cannot end while this body lives.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}
