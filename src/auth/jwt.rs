//! Session tokens: HS256 JWTs with `sub`, `role`, `iss`, `aud`, `iat`, `exp`, all required on the way in.

use std::path::Path;

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::{config::AuthSettings, domain::Role};

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// The claims of a tracking share link: read-only access to one order until `exp`. Its audience is
/// the API audience with `-track` appended, so it is never accepted as a session token (and a session
/// token is never accepted as a share link).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareClaims {
    /// `order:{id}`.
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

impl ShareClaims {
    /// The order this link shows.
    pub fn order_id(&self) -> Option<i64> {
        self.sub.strip_prefix("order:")?.parse().ok()
    }
}

/// Signing and verification keys plus the rules every token must meet.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: u64,
    /// Key for hashing OTP codes, derived from the same secret so every node agrees.
    otp_key: Vec<u8>,
    /// Key for hashing and sealing delivery codes, derived likewise.
    delivery_key: Vec<u8>,
    /// The rules share links must meet: their own audience, no leeway on expiry.
    share_validation: Validation,
}

impl JwtKeys {
    /// Builds keys from the configured secret, or from `{data_dir}/jwt_secret` (created on first run).
    pub fn from_settings(settings: &AuthSettings, data_dir: &Path) -> anyhow::Result<Self> {
        let secret = if settings.jwt_secret.expose_secret().is_empty() {
            load_or_create_secret(data_dir, "jwt_secret")?
        } else {
            settings.jwt_secret.clone()
        };
        anyhow::ensure!(
            secret.expose_secret().len() >= 32,
            "the JWT secret must be at least 32 bytes"
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let mut share_validation = Validation::new(Algorithm::HS256);
        share_validation.set_issuer(&[&settings.issuer]);
        share_validation.set_audience(&[share_audience(&settings.audience)]);
        share_validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        share_validation.leeway = 0;
        let derive = |label: &[u8]| {
            use sha2::Digest;
            sha2::Sha256::new_with_prefix(label)
                .chain_update(secret.expose_secret())
                .finalize()
                .to_vec()
        };
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: settings.token_ttl_secs,
            otp_key: derive(b"onemedi-otp:"),
            delivery_key: derive(b"onemedi-delivery-code:"),
            share_validation,
        })
    }

    /// Signs a token for `user_id` with `role`.
    pub fn issue(&self, user_id: i64, role: Role) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl_secs,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Verifies signature, algorithm, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims)
    }

    /// Signs a read-only tracking link for `order` valid until `expires_at` (Unix seconds).
    pub fn issue_share(&self, order: i64, expires_at: u64) -> anyhow::Result<String> {
        let claims = ShareClaims {
            sub: format!("order:{order}"),
            iss: self.issuer.clone(),
            aud: share_audience(&self.audience),
            iat: jsonwebtoken::get_current_timestamp(),
            exp: expires_at,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Verifies a share link: signature, algorithm, issuer, its audience and expiry (no leeway).
    pub fn verify_share(&self, token: &str) -> Result<ShareClaims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<ShareClaims>(token, &self.decoding, &self.share_validation)
            .map(|data| data.claims)
    }

    /// The key delivery codes are hashed and sealed with.
    pub fn delivery_key(&self) -> &[u8] {
        &self.delivery_key
    }

    /// The key OTP codes are hashed with.
    pub fn otp_key(&self) -> &[u8] {
        &self.otp_key
    }

    /// Lifetime of issued tokens in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }
}

/// The audience of share links.
pub fn share_audience(audience: &str) -> String {
    format!("{audience}-track")
}

/// The secret kept in `{data_dir}/{file_name}`, generated (32 random bytes, hex) on first use.
pub fn load_or_create_secret(data_dir: &Path, file_name: &str) -> anyhow::Result<SecretString> {
    let path = data_dir.join(file_name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(existing.trim().to_owned()));
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let bytes: [u8; 32] = rand::random();
    let secret = hex::encode(bytes);
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    restrict_permissions(&path)?;
    tracing::info!(path = %path.display(), "generated a new secret");
    Ok(SecretString::from(secret))
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) -> anyhow::Result<()> {
    Ok(())
}
