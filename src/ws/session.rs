//! One websocket session: a task that selects over the client's frames, the heartbeat tick, its
//! queue's overflow signal and the server's shutdown signal, and answers commands. The events the hub
//! queues for the session do not pass through it: the connection's body (`outbound`) writes them,
//! holding them back while a command is handled so that its reply goes first.
//! It ends with a close code that says why.

use std::{collections::HashSet, pin::Pin, sync::Arc, time::Instant};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use serde_json::Value;
use tokio::sync::watch;

use super::{
    CLOSE_TIMEOUT, MAX_SUBSCRIPTIONS, handshake,
    hub::SessionLink,
    protocol::{Command, Incoming, Refusal, Reply},
    share::ShareGrant,
    topics::{self, Topic},
    units::{self, CrewUnit},
};
use crate::{
    domain::{Role, UserId},
    error::ErrorCode,
    state::AppState,
};

/// Who the session belongs to, fixed for its lifetime (a role change applies on reconnect).
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub user: UserId,
    pub role: Role,
}

/// Who opened a session: a signed-in user, or a share link's holder (read-only, one order, until the
/// link expires).
#[derive(Debug, Clone, Copy)]
pub enum Principal {
    User(Identity),
    Share(ShareGrant),
}

/// Why a session ends.
fn reason(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code,
        description: Some(description.to_owned()),
    })
}

/// The session's view of itself while it runs.
pub(super) struct Session {
    pub state: Arc<AppState>,
    pub principal: Principal,
    link: Arc<SessionLink>,
    topics: HashSet<String>,
    /// The unit this user crews, looked up on the first unit command (`None` = not looked up yet).
    pub crew: Option<Option<CrewUnit>>,
}

/// Runs a session to its end. `identity` is `None` when the handshake carried no token; `link` is
/// the session's place in the hub, whose queue the connection's body drains.
pub async fn run(
    state: Arc<AppState>,
    mut ws: actix_ws::Session,
    mut stream: AggregatedMessageStream,
    identity: Option<Identity>,
    link: Arc<SessionLink>,
) {
    let principal = match identity {
        Some(identity) => Principal::User(identity),
        None => match authenticate_first(&state, &mut ws, &mut stream).await {
            Ok(principal) => principal,
            Err(close) => return close_with(&link, ws, close).await,
        },
    };
    if let Principal::Share(_) = principal {
        link.set_read_only();
    }
    let mut shutdown = state.shutdown.subscribe();
    let mut session = Session {
        state,
        principal,
        link,
        topics: HashSet::new(),
        crew: None,
    };
    let close = session.serve(&mut ws, &mut stream, &mut shutdown).await;
    for topic in session.topics.drain() {
        session.state.hub.unsubscribe(&topic, session.link.id());
    }
    close_with(&session.link, ws, close).await;
}

/// Sends the close frame as the session's last, giving up after [`CLOSE_TIMEOUT`] if the client is
/// not reading.
async fn close_with(link: &SessionLink, ws: actix_ws::Session, close: Option<CloseReason>) {
    link.set_closing();
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(close)).await;
}

/// Waits for the first frame to be a valid `auth` command, with a session token or a share link's.
async fn authenticate_first(
    state: &AppState,
    ws: &mut actix_ws::Session,
    stream: &mut AggregatedMessageStream,
) -> Result<Principal, Option<CloseReason>> {
    let deadline = tokio::time::sleep(state.settings.realtime.auth_timeout());
    tokio::pin!(deadline);
    loop {
        let message = tokio::select! {
            _ = &mut deadline => return Err(reason(CloseCode::Policy, "no auth message in time")),
            message = stream.recv() => message,
        };
        match message {
            Some(Ok(AggregatedMessage::Text(text))) => {
                let parsed = serde_json::from_str::<Incoming>(&text);
                let (reference, token) = match parsed {
                    Ok(Incoming {
                        reference,
                        command: Command::Auth { token },
                    }) => (reference, token),
                    _ => {
                        let reply = Reply::Error {
                            code: ErrorCode::Unauthorized,
                            message: "send {\"type\":\"auth\",\"token\":…} first",
                            reference: None,
                        };
                        let _ = ws.text(reply.to_text()).await;
                        return Err(reason(CloseCode::Policy, "authenticate first"));
                    }
                };
                let principal = match ShareGrant::verify(state, &token) {
                    Some(grant) => Ok(Principal::Share(grant)),
                    None => handshake::identify(state, &token).await.map(Principal::User),
                };
                return match principal {
                    Ok(principal) => {
                        let ack = Reply::Ack {
                            reference: reference.as_ref(),
                        };
                        let _ = ws.text(ack.to_text()).await;
                        Ok(principal)
                    }
                    Err(error) => {
                        let reply = Reply::Error {
                            code: ErrorCode::Unauthorized,
                            message: &error.message,
                            reference: reference.as_ref(),
                        };
                        let _ = ws.text(reply.to_text()).await;
                        Err(reason(CloseCode::Policy, "unauthorized"))
                    }
                };
            }
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                let _ = ws.pong(&bytes).await;
            }
            Some(Ok(AggregatedMessage::Pong(_))) => {}
            Some(Ok(AggregatedMessage::Binary(_))) => {
                return Err(reason(CloseCode::Unsupported, "text frames only"));
            }
            Some(Ok(AggregatedMessage::Close(_))) | None => return Err(None),
            Some(Err(error)) => return Err(protocol_close(&error)),
        }
    }
}

fn protocol_close(error: &ProtocolError) -> Option<CloseReason> {
    match error {
        ProtocolError::Overflow => reason(CloseCode::Size, "frame too large"),
        _ => reason(CloseCode::Protocol, "websocket protocol error"),
    }
}

/// What stopped a write to the client.
enum WriteError {
    /// The connection is gone.
    Closed,
    /// The hub found the outbound queue full while we were waiting on the client.
    Overflowed,
}

/// Writes one frame, unless the queue overflows while the client is not reading.
async fn write(
    ws: &mut actix_ws::Session,
    frame: String,
    overflowed: Pin<&mut impl Future<Output = ()>>,
) -> Result<(), WriteError> {
    tokio::select! {
        biased;
        sent = ws.text(frame) => sent.map_err(|_| WriteError::Closed),
        () = overflowed => Err(WriteError::Overflowed),
    }
}

/// Resolves when a share session's link expires; never for a signed-in user's session.
async fn link_expiry(principal: Principal) {
    match principal {
        Principal::Share(grant) => tokio::time::sleep(grant.remaining()).await,
        Principal::User(_) => std::future::pending().await,
    }
}

impl Session {
    /// The signed-in user, or `forbidden` for a share link's read-only session.
    pub fn user(&self) -> Result<UserId, Refusal> {
        match self.principal {
            Principal::User(identity) => Ok(identity.user),
            Principal::Share(_) => Err(Refusal::forbidden("a tracking link is read-only")),
        }
    }

    async fn serve(
        &mut self,
        ws: &mut actix_ws::Session,
        stream: &mut AggregatedMessageStream,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<CloseReason> {
        let settings = &self.state.settings.realtime;
        let client_timeout = settings.client_timeout();
        let mut heartbeat = tokio::time::interval(settings.heartbeat_interval());
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let overflow = reason(
            CloseCode::Again,
            "outbound queue full: the client is not keeping up",
        );
        if *shutdown.borrow() {
            return reason(CloseCode::Away, "server shutting down");
        }
        // The session's long-lived signals are pinned once, not re-registered on every frame.
        let expiry = link_expiry(self.principal);
        tokio::pin!(expiry);
        let link = self.link.clone();
        let overflowed = link.overflowed();
        tokio::pin!(overflowed);
        let shutting_down = async {
            let _ = shutdown.wait_for(|down| *down).await;
        };
        tokio::pin!(shutting_down);
        loop {
            let written = tokio::select! {
                biased;
                () = &mut shutting_down => return reason(CloseCode::Away, "server shutting down"),
                () = &mut expiry => return reason(CloseCode::Policy, "the tracking link expired"),
                () = &mut overflowed => return overflow,
                message = stream.recv() => {
                    last_heard = Instant::now();
                    match message {
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            // Events wait until the reply is queued: a command is answered before the
                            // events it causes reach this client.
                            self.link.hold();
                            let written = match self.handle_text(&text).await {
                                Some(reply) => write(ws, reply, overflowed.as_mut()).await,
                                None => Ok(()),
                            };
                            self.link.release();
                            written
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            return reason(CloseCode::Unsupported, "text frames only");
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            ws.pong(&bytes).await.map_err(|_| WriteError::Closed)
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
                        Some(Ok(AggregatedMessage::Close(_))) => return reason(CloseCode::Normal, "bye"),
                        None => return None,
                        Some(Err(error)) => return protocol_close(&error),
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > client_timeout {
                        return reason(CloseCode::Policy, "heartbeat timeout");
                    }
                    ws.ping(b"").await.map_err(|_| WriteError::Closed)
                }
            };
            match written {
                Ok(()) => {}
                Err(WriteError::Closed) => return None,
                Err(WriteError::Overflowed) => return overflow,
            }
        }
    }

    /// Applies one client frame; returns the reply frame, if any.
    async fn handle_text(&mut self, text: &str) -> Option<String> {
        let Incoming { reference, command } = match serde_json::from_str::<Incoming>(text) {
            Ok(incoming) => incoming,
            Err(error) => {
                let (code, message) = if error.is_data() {
                    (
                        ErrorCode::ValidationFailed,
                        format!("not a known command: {error}"),
                    )
                } else {
                    (
                        ErrorCode::MalformedJson,
                        "frames are JSON objects with a \"type\"".to_owned(),
                    )
                };
                let reference = reference_of(text);
                return Some(
                    Reply::Error {
                        code,
                        message: &message,
                        reference: reference.as_ref(),
                    }
                    .to_text(),
                );
            }
        };
        let always_ack = !matches!(command, Command::Location(_));
        match self.apply(command).await {
            Ok(()) if always_ack || reference.is_some() => Some(
                Reply::Ack {
                    reference: reference.as_ref(),
                }
                .to_text(),
            ),
            Ok(()) => None,
            Err(refusal) => Some(
                Reply::Error {
                    code: refusal.code,
                    message: &refusal.message,
                    reference: reference.as_ref(),
                }
                .to_text(),
            ),
        }
    }

    async fn apply(&mut self, command: Command) -> Result<(), Refusal> {
        let crew_only = matches!(
            command,
            Command::Location(_) | Command::Status { .. } | Command::Accept { .. } | Command::Decline { .. }
        );
        if crew_only && let Principal::Share(_) = self.principal {
            return Err(Refusal::forbidden("a tracking link is read-only"));
        }
        match command {
            Command::Auth { .. } | Command::Ping => Ok(()),
            Command::Subscribe { topic } => self.subscribe(&topic).await,
            Command::Unsubscribe { topic } => {
                if self.topics.remove(&topic) {
                    self.state.hub.unsubscribe(&topic, self.link.id());
                }
                Ok(())
            }
            Command::Location(report) => units::location(self, report).await,
            Command::Status { status } => units::status(self, &status).await,
            Command::Accept {
                request_id,
                kind,
                reason,
            } => units::answer(self, request_id, kind.as_deref(), true, reason).await,
            Command::Decline {
                request_id,
                kind,
                reason,
            } => units::answer(self, request_id, kind.as_deref(), false, reason).await,
        }
    }

    async fn subscribe(&mut self, name: &str) -> Result<(), Refusal> {
        let topic = Topic::parse(name).ok_or_else(|| Refusal::invalid(format!("unknown topic {name:?}")))?;
        let name = topic.name();
        if self.topics.contains(&name) {
            return Ok(());
        }
        if self.topics.len() >= MAX_SUBSCRIPTIONS {
            return Err(Refusal::invalid(format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions per session"
            )));
        }
        let allowed = match self.principal {
            Principal::User(identity) => {
                let mut conn = self.state.db.read().await?;
                topics::may_subscribe(&mut conn, identity.user, identity.role, topic).await?
            }
            Principal::Share(grant) => name == grant.topic(),
        };
        if !allowed {
            return Err(Refusal::forbidden(format!("you may not follow {name}")));
        }
        self.state.hub.subscribe(&name, &self.link);
        self.topics.insert(name);
        Ok(())
    }
}

/// The `ref` of a frame, for error replies that happen before the frame parsed.
fn reference_of(text: &str) -> Option<Value> {
    serde_json::from_str::<Value>(text).ok()?.get("ref").cloned()
}
