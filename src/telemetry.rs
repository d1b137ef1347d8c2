//! JSON structured logging: one subscriber for the process, filtered by `RUST_LOG`.

use tracing_subscriber::{EnvFilter, fmt::format::FmtSpan};

/// Installs the global subscriber. Request spans (with their request id) are logged when they close, so
/// every request produces one line with its latency. Calling it twice is harmless.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_span_events(FmtSpan::CLOSE)
        .with_target(true)
        .with_writer(std::io::stderr)
        .try_init();
}
