//! Request counters and latency histograms, rendered in the Prometheus text format at `/metrics`.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Histogram bucket upper bounds in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum_secs: f64,
    /// Per-bucket (non-cumulative) counts; the last slot is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
}

/// In-process metrics. Route labels are route *patterns* (`/api/v1/users/addresses/{id}`), so the
/// number of series is bounded by the number of routes.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Series>>,
    /// Outgoing mail outcomes; shared with the mailer's worker, which counts into it.
    pub mail: Arc<MailCounters>,
}

/// What became of the messages given to the mailer.
#[derive(Debug, Default)]
pub struct MailCounters {
    /// Delivered to the transport (the SMTP server accepted it, or the file was written).
    pub sent: AtomicU64,
    /// Attempts that failed and were retried.
    pub retried: AtomicU64,
    /// Given up after the last attempt.
    pub failed: AtomicU64,
    /// Refused because the queue was full (or the mailer stopped).
    pub dropped: AtomicU64,
}

impl MailCounters {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let Ok(mut requests) = self.requests.lock() else {
            return;
        };
        let series = requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        let secs = elapsed.as_secs_f64();
        series.count += 1;
        series.sum_secs += secs;
        let slot = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        series.buckets[slot] += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(requests) = self.requests.lock() else {
            return out;
        };
        out.push_str("# HELP onemedi_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE onemedi_http_requests_total counter\n");
        for ((method, route, status), series) in requests.iter() {
            let _ = writeln!(
                out,
                "onemedi_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                series.count
            );
        }
        out.push_str("# HELP onemedi_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE onemedi_http_request_duration_seconds histogram\n");
        let mut merged: BTreeMap<(&str, &str), Series> = BTreeMap::new();
        for ((method, route, _), series) in requests.iter() {
            let total = merged.entry((method, route)).or_default();
            total.count += series.count;
            total.sum_secs += series.sum_secs;
            for (slot, n) in series.buckets.iter().enumerate() {
                total.buckets[slot] += n;
            }
        }
        for ((method, route), series) in merged {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(series.buckets.iter()) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "onemedi_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "onemedi_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                series.count
            );
            let _ = writeln!(
                out,
                "onemedi_http_request_duration_seconds_sum{{{labels}}} {}",
                series.sum_secs
            );
            let _ = writeln!(
                out,
                "onemedi_http_request_duration_seconds_count{{{labels}}} {}",
                series.count
            );
        }
        out.push_str("# HELP onemedi_mail_messages_total Outgoing e-mail by outcome.\n");
        out.push_str("# TYPE onemedi_mail_messages_total counter\n");
        for (outcome, counter) in [
            ("sent", &self.mail.sent),
            ("retried", &self.mail.retried),
            ("failed", &self.mail.failed),
            ("dropped", &self.mail.dropped),
        ] {
            let _ = writeln!(
                out,
                "onemedi_mail_messages_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_render_as_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/health", 200, Duration::from_millis(2));
        metrics.observe("GET", "/health", 200, Duration::from_millis(30));
        let text = metrics.render();
        assert!(
            text.contains("onemedi_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2")
        );
        assert!(text.contains("le=\"0.0025\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
        assert!(
            text.contains("onemedi_http_request_duration_seconds_count{method=\"GET\",route=\"/health\"} 2")
        );
    }
}
