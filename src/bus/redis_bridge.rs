//! The Redis side of the bus: one relay task that PUBLISHes this node's events in order (pipelined,
//! publishers never wait on Redis), and one dedicated pub/sub connection per node that receives every
//! other node's events (reconnecting by itself).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;

use super::{Envelope, Local};

/// How long to wait before resubscribing after the pub/sub connection dropped.
const RESUBSCRIBE_BACKOFF: Duration = Duration::from_secs(1);

/// How long one subscription attempt may take (a hung Redis accepts the connection and never answers).
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Events waiting for the relay task. A healthy Redis drains it far faster than a node publishes; while
/// Redis is unreachable it fills, and further events are dropped (counted and logged) rather than making
/// HTTP handlers and websocket sessions wait: the bus is at most once across nodes (see the module
/// above), and a node that stalled on Redis would fail its own clients too.
const RELAY_QUEUE: usize = 8192;

/// Most events sent to Redis in one pipelined round trip.
const RELAY_BATCH: usize = 256;

/// Where this node's events go: a queue drained by one task that PUBLISHes them in order, pipelining
/// whatever has queued up meanwhile into one round trip. Publishers do not wait for Redis: a websocket
/// command or an HTTP handler that publishes an event goes on once it is queued.
#[derive(Clone)]
pub(super) struct Relay {
    queue: tokio::sync::mpsc::Sender<String>,
    dropped: Arc<AtomicU64>,
}

impl Relay {
    /// Starts the relay task on the current arbiter; it ends when the last `Relay` is dropped.
    pub fn start(publisher: redis::aio::ConnectionManager, channel: String) -> Self {
        let (queue, events) = tokio::sync::mpsc::channel(RELAY_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        actix_web::rt::spawn(relay(publisher, channel, events, dropped.clone()));
        Self { queue, dropped }
    }

    /// Queues `text` for the other nodes, after every event this node queued before it.
    pub fn send(&self, text: String) {
        if self.queue.try_send(text).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// PUBLISHes queued events in queue order, as many per round trip as have queued up.
async fn relay(
    mut publisher: redis::aio::ConnectionManager,
    channel: String,
    mut events: tokio::sync::mpsc::Receiver<String>,
    dropped: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(RELAY_BATCH);
    while events.recv_many(&mut batch, RELAY_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for text in &batch {
            pipe.cmd("PUBLISH").arg(&channel).arg(text).ignore();
        }
        if let Err(error) = pipe.query_async::<()>(&mut publisher).await {
            tracing::warn!(error = %error, events = batch.len(), "events not relayed to other nodes");
        }
        batch.clear();
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(
                events = lost,
                "events not relayed to other nodes: the relay queue was full"
            );
        }
    }
}

/// Subscribes to `channel` and spawns the task that delivers other nodes' events to `local`. Returns
/// once the first subscription is confirmed, or — Redis being unreachable at start — once it failed:
/// the node then starts on its own and the task keeps subscribing until Redis answers.
pub(super) async fn subscribe(
    client: redis::Client,
    channel: String,
    local: Arc<Local>,
) -> anyhow::Result<()> {
    let pubsub = match open(&client, &channel).await {
        Ok(pubsub) => Some(pubsub),
        Err(error) => {
            tracing::error!(error = %error, channel, "event channel unavailable at start; other nodes' events arrive once it is");
            None
        }
    };
    // This node's own messages come back too. Both ways of writing an envelope put the node id first,
    // so they are recognised by their first bytes and skipped without parsing the event.
    let own = own_prefix(&local.node_id);
    actix_web::rt::spawn(async move {
        let mut pubsub = pubsub;
        loop {
            let current = match pubsub.take() {
                Some(current) => current,
                None => match open(&client, &channel).await {
                    Ok(fresh) => {
                        tracing::info!(channel, "event channel resubscribed");
                        fresh
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "event channel unavailable; retrying");
                        tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
                        continue;
                    }
                },
            };
            let mut messages = current.into_on_message();
            while let Some(message) = messages.next().await {
                let Ok(text) = message.get_payload::<String>() else {
                    continue;
                };
                if !text.starts_with(&own) {
                    receive(&local, &text);
                }
            }
            tracing::warn!(channel, "event channel connection lost");
            tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
        }
    });
    Ok(())
}

/// How the messages this node relays begin: `{"node":"<its id>"`.
fn own_prefix(node_id: &str) -> String {
    format!(r#"{{"node":{}"#, serde_json::Value::from(node_id))
}

/// One subscription attempt, bounded by [`SUBSCRIBE_TIMEOUT`].
async fn open(client: &redis::Client, channel: &str) -> anyhow::Result<redis::aio::PubSub> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    Ok(tokio::time::timeout(SUBSCRIBE_TIMEOUT, attempt)
        .await
        .map_err(|_| anyhow::anyhow!("subscribing to the event channel timed out"))??)
}

/// Delivers a relayed message unless this node published it.
fn receive(local: &Local, text: &str) {
    match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(envelope) if envelope.node == local.node_id => {}
        Ok(envelope) => local.deliver(&envelope.topics, &envelope.event),
        Err(error) => tracing::warn!(error = %error, "unreadable message on the event channel"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_own_messages_begin_with_its_prefix_and_no_other_nodes_do() {
        let envelope = Envelope {
            node: "1f2e",
            topics: vec!["dispatch".to_owned()],
            event: serde_json::json!({"type": "unit_status", "v": 1}),
        };
        let serialised = serde_json::to_string(&envelope).unwrap();
        // The shape `Bus::publish_event` writes around an event's text.
        let written = r#"{"node":"1f2e","topics":["unit:7"],"event":{"type":"unit_location"}}"#;
        for text in [serialised.as_str(), written] {
            assert!(text.starts_with(&own_prefix("1f2e")), "{text}");
            assert!(!text.starts_with(&own_prefix("1f2")), "{text}");
            assert!(!text.starts_with(&own_prefix("1f2e0")), "{text}");
        }
    }
}
