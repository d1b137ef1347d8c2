//! The Redis side of the bus: PUBLISH on the shared connection manager, and one dedicated pub/sub
//! connection per node that receives every other node's events (reconnecting by itself).

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;

use super::{Envelope, Local};

/// How long to wait before resubscribing after the pub/sub connection dropped.
const RESUBSCRIBE_BACKOFF: Duration = Duration::from_secs(1);

/// How long the first subscription may take at start before the server refuses to start.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where this node's events go.
#[derive(Clone)]
pub(super) struct Relay {
    pub publisher: redis::aio::ConnectionManager,
    pub channel: String,
}

impl Relay {
    pub async fn send(&self, text: String) {
        let mut conn = self.publisher.clone();
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(text)
            .query_async(&mut conn)
            .await;
        if let Err(error) = sent {
            tracing::warn!(error = %error, "event not relayed to other nodes");
        }
    }
}

/// Subscribes to `channel` and spawns the task that delivers other nodes' events to `local`. Returns
/// once the first subscription is confirmed.
pub(super) async fn subscribe(
    client: redis::Client,
    channel: String,
    local: Arc<Local>,
) -> anyhow::Result<()> {
    let pubsub = tokio::time::timeout(SUBSCRIBE_TIMEOUT, open(&client, &channel))
        .await
        .map_err(|_| anyhow::anyhow!("subscribing to the event channel timed out"))??;
    actix_web::rt::spawn(async move {
        let mut pubsub = Some(pubsub);
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
                receive(&local, &text);
            }
            tracing::warn!(channel, "event channel connection lost");
            tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
        }
    });
    Ok(())
}

async fn open(client: &redis::Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Delivers a relayed message unless this node published it.
fn receive(local: &Local, text: &str) {
    match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(envelope) if envelope.node == local.node_id => {}
        Ok(envelope) => local.deliver(&envelope.topics, &envelope.event),
        Err(error) => tracing::warn!(error = %error, "unreadable message on the event channel"),
    }
}
