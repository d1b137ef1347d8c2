//! Razorpay: the signature rules (checkout and webhook HMAC-SHA256), locally issued ids for offline
//! mode, and the HTTP client of the Orders API used when real keys are configured.

use std::{path::Path, time::Duration};

use anyhow::Context;
use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::PaymentsSettings;

type HmacSha256 = Hmac<Sha256>;

/// The key id shown to clients in offline mode (Razorpay's test keys start with `rzp_test_`).
pub const OFFLINE_KEY_ID: &str = "rzp_test_offline";
/// Characters after the prefix in Razorpay's ids (`order_EKwxwAgItmmXdp`).
const ID_CHARS: usize = 14;
/// Longest provider id accepted from a client or a webhook.
pub const MAX_ID_LEN: usize = 64;

/// HMAC-SHA256 of `message` under `key` (RFC 2104 with SHA-256).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (longer ones are hashed), so the error arm is unreachable.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// True when `signature_hex` is the hex HMAC-SHA256 of `message` under `key`, compared in constant time.
/// Only the exact form Razorpay sends is taken, as its SDKs compare: 64 lowercase hex digits, nothing
/// around them.
pub fn verify_hex(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let exact = signature_hex.len() == 64
        && signature_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !exact {
        return false;
    }
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(message);
    mac.verify_slice(&signature).is_ok()
}

/// The checkout signature Razorpay returns to the client: hex HMAC-SHA256 of
/// `{razorpay_order_id}|{razorpay_payment_id}` under the key secret.
pub fn checkout_signature(key_secret: &SecretString, order_id: &str, payment_id: &str) -> String {
    hex::encode(hmac_sha256(
        key_secret.expose_secret().as_bytes(),
        format!("{order_id}|{payment_id}").as_bytes(),
    ))
}

pub fn verify_checkout_signature(
    key_secret: &SecretString,
    order_id: &str,
    payment_id: &str,
    signature: &str,
) -> bool {
    verify_hex(
        key_secret.expose_secret().as_bytes(),
        format!("{order_id}|{payment_id}").as_bytes(),
        signature,
    )
}

/// `X-Razorpay-Signature`: hex HMAC-SHA256 of the raw request body under the webhook secret.
pub fn verify_webhook_signature(webhook_secret: &SecretString, raw_body: &[u8], signature: &str) -> bool {
    verify_hex(webhook_secret.expose_secret().as_bytes(), raw_body, signature)
}

/// A Razorpay-shaped id: `prefix_` and 14 random alphanumerics.
pub fn local_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let tail: String = (0..ID_CHARS)
        .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
        .collect();
    format!("{prefix}_{tail}")
}

/// True for ids of the form Razorpay uses: a known prefix, `_`, then ASCII letters and digits.
pub fn is_provider_id(id: &str, prefix: &str) -> bool {
    id.len() <= MAX_ID_LEN
        && id
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|tail| !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The Orders API's answer (the fields this server reads).
#[derive(Debug, Deserialize)]
pub struct ProviderOrder {
    pub id: String,
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Serialize)]
struct CreateOrder<'a> {
    amount: i64,
    currency: &'a str,
    receipt: &'a str,
}

/// How payments are taken: with real keys through Razorpay, else offline with locally issued ids.
pub enum Gateway {
    Offline,
    Razorpay(RazorpayClient),
}

/// The keys and the gateway, resolved once at start.
pub struct Payments {
    pub key_id: String,
    key_secret: SecretString,
    webhook_secret: SecretString,
    pub gateway: Gateway,
}

impl Payments {
    /// Real keys when both `key_id` and `key_secret` are set (then the webhook secret is required);
    /// otherwise offline mode with a key secret (and, unless configured, a webhook secret) generated
    /// into the data dir.
    pub fn from_settings(settings: &PaymentsSettings, data_dir: &Path) -> anyhow::Result<Self> {
        let key_id = settings.key_id.trim();
        let has_secret = !settings.key_secret.expose_secret().is_empty();
        // Half a key pair is a misconfiguration, never a silent fall-back to offline mode.
        anyhow::ensure!(
            key_id.is_empty() != has_secret,
            "set both payments.key_id and payments.key_secret, or neither (offline mode)"
        );
        if has_secret {
            anyhow::ensure!(
                !settings.webhook_secret.expose_secret().is_empty(),
                "payments.webhook_secret is required when Razorpay keys are configured"
            );
            let client = RazorpayClient::new(
                &settings.api_base_url,
                key_id,
                settings.key_secret.clone(),
                Duration::from_secs(settings.request_timeout_secs.max(1)),
            )?;
            return Ok(Self {
                key_id: key_id.to_owned(),
                key_secret: settings.key_secret.clone(),
                webhook_secret: settings.webhook_secret.clone(),
                gateway: Gateway::Razorpay(client),
            });
        }
        let webhook_secret = if settings.webhook_secret.expose_secret().is_empty() {
            crate::auth::load_or_create_secret(data_dir, "razorpay_offline_webhook_secret")?
        } else {
            settings.webhook_secret.clone()
        };
        Ok(Self {
            key_id: OFFLINE_KEY_ID.to_owned(),
            key_secret: crate::auth::load_or_create_secret(data_dir, "razorpay_offline_key_secret")?,
            webhook_secret,
            gateway: Gateway::Offline,
        })
    }

    pub fn is_offline(&self) -> bool {
        matches!(self.gateway, Gateway::Offline)
    }

    pub fn key_secret(&self) -> &SecretString {
        &self.key_secret
    }

    pub fn webhook_secret(&self) -> &SecretString {
        &self.webhook_secret
    }

    /// A provider order for `amount_paise`: issued locally offline, else created through the Orders API.
    pub async fn create_order(&self, amount_paise: i64, receipt: &str) -> anyhow::Result<String> {
        match &self.gateway {
            Gateway::Offline => Ok(local_id("order")),
            Gateway::Razorpay(client) => {
                let order = client.create_order(amount_paise, receipt).await?;
                anyhow::ensure!(
                    order.amount == amount_paise && order.currency == "INR",
                    "Razorpay answered an order for {} {} instead of {amount_paise} INR",
                    order.amount,
                    order.currency
                );
                anyhow::ensure!(
                    is_provider_id(&order.id, "order"),
                    "Razorpay answered an unexpected order id"
                );
                Ok(order.id)
            }
        }
    }
}

/// A refund as Razorpay's Refunds API answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderRefund {
    pub id: String,
    pub amount: i64,
    /// `pending` (accepted, settled later by a `refund.processed`/`refund.failed` webhook),
    /// `processed` or `failed`.
    pub status: String,
}

#[derive(Debug, Serialize)]
struct CreateRefund<'a> {
    amount: i64,
    speed: &'a str,
    receipt: &'a str,
}

/// The header that makes a refund request idempotent at Razorpay.
pub const REFUND_IDEMPOTENCY_HEADER: &str = "X-Refund-Idempotency";

impl Payments {
    /// Refunds `amount_paise` of captured payment `payment_id`: offline, the refund is processed at
    /// once under a local id; with keys, through Razorpay's Refunds API with `idempotency_key`.
    pub async fn refund(
        &self,
        payment_id: &str,
        amount_paise: i64,
        idempotency_key: &str,
        receipt: &str,
    ) -> anyhow::Result<ProviderRefund> {
        match &self.gateway {
            Gateway::Offline => Ok(ProviderRefund {
                id: local_id("rfnd"),
                amount: amount_paise,
                status: "processed".to_owned(),
            }),
            Gateway::Razorpay(client) => {
                let refund = client
                    .refund(payment_id, amount_paise, idempotency_key, receipt)
                    .await?;
                anyhow::ensure!(
                    refund.amount == amount_paise,
                    "Razorpay answered a refund of {} instead of {amount_paise} paise",
                    refund.amount
                );
                anyhow::ensure!(
                    is_provider_id(&refund.id, "rfnd"),
                    "Razorpay answered an unexpected refund id"
                );
                Ok(refund)
            }
        }
    }
}

/// The Orders and Refunds API client (`POST {base}/v1/orders` with basic auth `key_id:key_secret`).
pub struct RazorpayClient {
    http: reqwest::Client,
    base_url: String,
    key_id: String,
    key_secret: SecretString,
}

impl RazorpayClient {
    pub fn new(
        base_url: &str,
        key_id: &str,
        key_secret: SecretString,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the Razorpay HTTP client")?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key_id: key_id.to_owned(),
            key_secret,
        })
    }

    /// POSTs `body` to `path` with basic auth (and `headers`), and reads the answer as `T`; a non-2xx
    /// answer is an error carrying its status and the start of its body. `api` names the API in errors.
    async fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        api: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &B,
    ) -> anyhow::Result<T> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .basic_auth(&self.key_id, Some(self.key_secret.expose_secret()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .json(body)
            .send()
            .await
            .with_context(|| format!("calling Razorpay's {api} API"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(500).collect();
            anyhow::bail!("Razorpay's {api} API answered {status}: {body}");
        }
        response
            .json::<T>()
            .await
            .with_context(|| format!("reading the answer of Razorpay's {api} API"))
    }

    /// Creates an order for `amount_paise` INR with `receipt` (our order number).
    #[tracing::instrument(skip(self), fields(base = %self.base_url))]
    pub async fn create_order(&self, amount_paise: i64, receipt: &str) -> anyhow::Result<ProviderOrder> {
        let body = CreateOrder {
            amount: amount_paise,
            currency: "INR",
            receipt,
        };
        self.post("Orders", "/v1/orders", &[], &body).await
    }

    /// Refunds `amount_paise` of payment `payment_id` (a normal refund). `idempotency_key` goes in
    /// `X-Refund-Idempotency`: a retry with the same key and body never refunds twice.
    #[tracing::instrument(skip(self), fields(base = %self.base_url))]
    pub async fn refund(
        &self,
        payment_id: &str,
        amount_paise: i64,
        idempotency_key: &str,
        receipt: &str,
    ) -> anyhow::Result<ProviderRefund> {
        anyhow::ensure!(is_provider_id(payment_id, "pay"), "not a Razorpay payment id");
        let body = CreateRefund {
            amount: amount_paise,
            speed: "normal",
            receipt,
        };
        let path = format!("/v1/payments/{payment_id}/refund");
        self.post(
            "Refunds",
            &path,
            &[(REFUND_IDEMPOTENCY_HEADER, idempotency_key)],
            &body,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 (HMAC-SHA256 test vectors), section 4: test cases 1, 2, 3, 4, 6 and 7 (case 5 is a
    /// truncated output and is not used by Razorpay).
    #[test]
    fn hmac_sha256_matches_the_rfc_4231_test_vectors() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                (0x01..=0x19).collect(),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. \
The key needs to be hashed before being used by the HMAC algorithm."
                    .to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            assert_eq!(hex::encode(hmac_sha256(&key, &data)), expected);
            assert!(verify_hex(&key, &data, expected));
            let mut wrong = expected.to_owned();
            wrong.replace_range(0..1, if expected.starts_with('0') { "1" } else { "0" });
            assert!(!verify_hex(&key, &data, &wrong));
        }
        assert!(!verify_hex(b"k", b"m", "not hex"));
        assert!(!verify_hex(b"k", b"m", ""));
    }

    #[test]
    fn only_the_exact_lowercase_hex_form_of_a_valid_signature_is_taken() {
        let secret = SecretString::from("s3cret".to_owned());
        let signature = checkout_signature(&secret, "order_A", "pay_B");
        assert!(verify_checkout_signature(&secret, "order_A", "pay_B", &signature));
        for altered in [
            signature.to_uppercase(),
            format!(" {signature}"),
            format!("{signature}\n"),
            format!("{signature}00"),
        ] {
            assert!(
                !verify_checkout_signature(&secret, "order_A", "pay_B", &altered),
                "{altered:?}"
            );
        }
    }

    #[test]
    fn checkout_signatures_cover_order_and_payment_id() {
        let secret = SecretString::from("s3cret".to_owned());
        let signature = checkout_signature(&secret, "order_A", "pay_B");
        assert!(verify_checkout_signature(&secret, "order_A", "pay_B", &signature));
        assert!(!verify_checkout_signature(
            &secret, "order_A", "pay_C", &signature
        ));
        assert!(!verify_checkout_signature(
            &SecretString::from("other".to_owned()),
            "order_A",
            "pay_B",
            &signature
        ));
    }

    #[test]
    fn local_ids_look_like_razorpay_ids() {
        let id = local_id("order");
        assert_eq!(id.len(), "order_".len() + ID_CHARS);
        assert!(is_provider_id(&id, "order"));
        assert!(!is_provider_id(&id, "pay"));
        assert!(!is_provider_id("order_", "order"));
        assert!(!is_provider_id("order_a|b", "order"));
    }
}
