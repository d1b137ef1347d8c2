//! Sending SMS (OTP codes). The embedded default writes each message to the outbox folder and the log.

use std::{future::Future, path::PathBuf, pin::Pin};

use anyhow::Context;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that delivers a text message to a phone number.
pub trait SmsSender: Send + Sync {
    fn send<'a>(&'a self, to: &'a str, body: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// Writes every message as a file `{outbox}/sms-{timestamp}-{phone}.txt` and logs it.
pub struct OutboxSms {
    dir: PathBuf,
}

impl OutboxSms {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

impl SmsSender for OutboxSms {
    fn send<'a>(&'a self, to: &'a str, body: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            tokio::fs::create_dir_all(&self.dir)
                .await
                .with_context(|| format!("creating {}", self.dir.display()))?;
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
            let file = self
                .dir
                .join(format!("sms-{stamp}-{}.txt", to.trim_start_matches('+')));
            tokio::fs::write(&file, format!("To: {to}\n\n{body}\n"))
                .await
                .context("writing the outbox")?;
            tracing::info!(to, file = %file.display(), "sms written to the outbox");
            Ok(())
        })
    }
}
