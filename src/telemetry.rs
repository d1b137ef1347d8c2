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

/// Query parameters whose values never reach the logs (`/ws?token=…` carries a session token).
const SECRET_QUERY_KEYS: [&str; 4] = ["token", "access_token", "signature", "code"];

/// The request span of every HTTP request: like tracing-actix-web's default, except that the logged
/// target has secret query values redacted and the client address is the TCP peer (a forwarded-for
/// header is the client's claim, not a fact).
pub struct RedactingRootSpan;

impl tracing_actix_web::RootSpanBuilder for RedactingRootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string());
        let route = request.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %redact_target(request.path(), request.query_string()),
            http.client_ip = %request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
            http.user_agent = %user_agent,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            request_id = %request_id.unwrap_or_default(),
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// `path?query` with the values of [`SECRET_QUERY_KEYS`] replaced by `REDACTED`.
pub fn redact_target(path: &str, query: &str) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _))
                if SECRET_QUERY_KEYS
                    .iter()
                    .any(|secret| key.eq_ignore_ascii_case(secret)) =>
            {
                format!("{key}=REDACTED")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_target;

    #[test]
    fn secret_query_values_are_redacted_and_the_rest_kept() {
        assert_eq!(redact_target("/ws", "token=eyJhbGci.x.y"), "/ws?token=REDACTED");
        assert_eq!(
            redact_target("/api/v1/users/addresses", "page=2&Token=abc&per_page=5"),
            "/api/v1/users/addresses?page=2&Token=REDACTED&per_page=5"
        );
        assert_eq!(redact_target("/health", ""), "/health");
    }
}
