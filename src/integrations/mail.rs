//! Outgoing e-mail through lettre: a bounded queue drained by a background task that delivers each
//! message with bounded retries — to an SMTP server when `mail.smtp_host` is set, otherwise as an `.eml`
//! file into `{data_dir}/outbox/mail/`. Nothing that enqueues a message ever waits for its delivery.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::authentication::Credentials,
};
use secrecy::ExposeSecret;
use tokio::sync::{Semaphore, mpsc};

use crate::{
    config::{MailSettings, SmtpSecurity},
    metrics::MailCounters,
};

/// Messages delivered at the same time by one node (SMTP connections come from lettre's pool).
const MAX_IN_FLIGHT: usize = 4;

/// One message to a customer: plain text with an HTML alternative.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Where messages go.
#[derive(Clone)]
enum Transport {
    /// `.eml` files in this folder (the embedded default).
    Outbox {
        dir: PathBuf,
        files: AsyncFileTransport<Tokio1Executor>,
    },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// The sending side of the mail queue; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    /// Filled by [`Mailer::send`]; drained by the worker task started in [`Mailer::start`], which ends
    /// when every `Mailer` clone is dropped.
    queue: mpsc::Sender<Queued>,
    counters: Arc<MailCounters>,
    smtp: bool,
}

impl Mailer {
    /// Builds the transport from the settings and starts the worker on the current Tokio runtime.
    pub fn start(
        settings: &MailSettings,
        outbox: PathBuf,
        counters: Arc<MailCounters>,
    ) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .with_context(|| format!("mail.from {:?} is not a mailbox", settings.from))?;
        let host = settings.smtp_host.trim();
        let transport = if host.is_empty() {
            let dir = outbox.join("mail");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            Transport::Outbox {
                files: AsyncFileTransport::new(&dir),
                dir,
            }
        } else {
            let builder = match settings.smtp_security {
                SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                    .context("mail.smtp_host is not a valid TLS host name")?,
                SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                    .context("mail.smtp_host is not a valid TLS host name")?,
            };
            let mut builder = builder
                .port(settings.smtp_port)
                .timeout(Some(Duration::from_secs(settings.timeout_secs.max(1))));
            if !settings.smtp_username.is_empty() {
                builder = builder.credentials(Credentials::new(
                    settings.smtp_username.clone(),
                    settings.smtp_password.expose_secret().to_owned(),
                ));
            }
            let smtp: AsyncSmtpTransport<Tokio1Executor> = builder.build();
            Transport::Smtp(smtp)
        };
        let smtp = matches!(transport, Transport::Smtp(_));
        let (queue, rx) = mpsc::channel(settings.queue_capacity.max(1));
        let worker = Worker {
            transport,
            attempts: settings.max_attempts.clamp(1, 10),
            backoff: settings.retry_backoff(),
            counters: counters.clone(),
        };
        tokio::spawn(worker.run(rx));
        Ok(Self {
            from,
            queue,
            counters,
            smtp,
        })
    }

    /// Whether messages go to an SMTP server (else to the file outbox).
    pub fn is_smtp(&self) -> bool {
        self.smtp
    }

    /// Queues a message without waiting. A full queue drops it (logged and counted): mail must never
    /// hold up the request that caused it.
    pub fn send(&self, outgoing: Outgoing) {
        let message = match build(&self.from, &outgoing) {
            Ok(message) => message,
            Err(error) => {
                MailCounters::count(&self.counters.failed);
                tracing::warn!(error = %error, to = %outgoing.to, "mail not built");
                return;
            }
        };
        if let Err(error) = self.queue.try_send(Queued {
            message,
            subject: outgoing.subject,
            to: outgoing.to.email.to_string(),
        }) {
            MailCounters::count(&self.counters.dropped);
            tracing::warn!(error = %error, "mail queue full or closed; message dropped");
        }
    }
}

/// The lettre message: `From`, `To`, `Subject`, `Date`, `Message-ID`, and a multipart/alternative body.
fn build(from: &Mailbox, outgoing: &Outgoing) -> anyhow::Result<Message> {
    Message::builder()
        .from(from.clone())
        .to(outgoing.to.clone())
        .subject(outgoing.subject.as_str())
        .message_id(None)
        .multipart(MultiPart::alternative_plain_html(
            outgoing.text.clone(),
            outgoing.html.clone(),
        ))
        .context("building the message")
}

/// A message ready to deliver, with what the log says about it.
struct Queued {
    message: Message,
    subject: String,
    to: String,
}

struct Worker {
    transport: Transport,
    attempts: u32,
    backoff: Duration,
    counters: Arc<MailCounters>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Queued>) {
        let worker = Arc::new(self);
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        while let Some(queued) = rx.recv().await {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let worker = worker.clone();
            tokio::spawn(async move {
                worker.deliver(queued).await;
                drop(permit);
            });
        }
    }

    /// Tries up to `attempts` times, doubling the pause between tries.
    async fn deliver(&self, queued: Queued) {
        let mut pause = self.backoff;
        for attempt in 1..=self.attempts {
            match self.try_once(&queued.message).await {
                Ok(()) => {
                    MailCounters::count(&self.counters.sent);
                    tracing::info!(to = %queued.to, subject = %queued.subject, attempt, "mail sent");
                    return;
                }
                Err(error) if attempt < self.attempts => {
                    MailCounters::count(&self.counters.retried);
                    tracing::warn!(error = %error, to = %queued.to, attempt, "mail not sent; retrying");
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                }
                Err(error) => {
                    MailCounters::count(&self.counters.failed);
                    tracing::error!(error = %error, to = %queued.to, subject = %queued.subject, attempt, "mail given up");
                }
            }
        }
    }

    async fn try_once(&self, message: &Message) -> anyhow::Result<()> {
        match &self.transport {
            Transport::Outbox { dir, files } => {
                // The folder may have been removed since start; recreate it rather than fail.
                tokio::fs::create_dir_all(dir).await?;
                files.send(message.clone()).await?;
            }
            Transport::Smtp(smtp) => {
                smtp.send(message.clone()).await?;
            }
        }
        Ok(())
    }
}
