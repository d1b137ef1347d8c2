//! Proof of delivery: the customer's one-time code, stored as a keyed hash the rider's entry is checked
//! against (constant time) and sealed so that only the server can show it back to the order's owner.
//!
//! Both forms carry a random nonce, so equal codes of two orders look unrelated. The key is derived from
//! the server secret, so every node can check and unseal.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Digits in a delivery code.
pub const CODE_DIGITS: usize = 6;
/// Wrong entries allowed per order; the next entry is refused (`delivery_code_locked`).
pub const MAX_ATTEMPTS: i32 = 5;

const NONCE_BYTES: usize = 16;

/// A freshly generated code with the two forms the order row keeps.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    pub code: String,
    /// `nonce.hmac(check | nonce | code)`, both hex.
    pub hash: String,
    /// `nonce.(code xor hmac(seal | nonce))`, both hex.
    pub sealed: String,
}

fn mac(key: &[u8], label: &[u8], nonce: &[u8], code: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(label);
    mac.update(nonce);
    mac.update(code);
    mac.finalize().into_bytes().into()
}

/// A new random code, hashed and sealed under `key`.
pub fn issue(key: &[u8]) -> IssuedCode {
    let mut rng = rand::rng();
    let code: String = (0..CODE_DIGITS)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    let nonce: [u8; NONCE_BYTES] = rng.random();
    let check = mac(key, b"check", &nonce, code.as_bytes());
    let pad = mac(key, b"seal", &nonce, b"");
    let sealed: Vec<u8> = code.bytes().zip(pad).map(|(c, p)| c ^ p).collect();
    IssuedCode {
        hash: format!("{}.{}", hex::encode(nonce), hex::encode(check)),
        sealed: format!("{}.{}", hex::encode(nonce), hex::encode(sealed)),
        code,
    }
}

/// The code inside `sealed`, if it was sealed under `key`.
pub fn unseal(key: &[u8], sealed: &str) -> Option<String> {
    let (nonce, body) = sealed.split_once('.')?;
    let nonce = hex::decode(nonce).ok()?;
    let body = hex::decode(body).ok()?;
    let pad = mac(key, b"seal", &nonce, b"");
    if body.len() > pad.len() {
        return None;
    }
    let code: String = body.iter().zip(pad).map(|(b, p)| char::from(b ^ p)).collect();
    code.bytes().all(|b| b.is_ascii_digit()).then_some(code)
}

/// Whether `entered` is the code behind `hash`; the comparison takes the same time whatever matches.
pub fn matches(key: &[u8], hash: &str, entered: &str) -> bool {
    let Some((nonce, expected)) = hash.split_once('.') else {
        return false;
    };
    let (Ok(nonce), Ok(expected)) = (hex::decode(nonce), hex::decode(expected)) else {
        return false;
    };
    let actual = mac(key, b"check", &nonce, entered.trim().as_bytes());
    bool::from(actual.as_slice().ct_eq(expected.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issued_code_checks_and_unseals_only_under_its_key() {
        let issued = issue(b"key one");
        assert_eq!(issued.code.len(), CODE_DIGITS);
        assert!(issued.code.bytes().all(|b| b.is_ascii_digit()));
        assert!(matches(b"key one", &issued.hash, &issued.code));
        assert!(!matches(b"key two", &issued.hash, &issued.code));
        assert_eq!(
            unseal(b"key one", &issued.sealed).as_deref(),
            Some(issued.code.as_str())
        );
        assert_ne!(
            unseal(b"key two", &issued.sealed).as_deref(),
            Some(issued.code.as_str())
        );
    }

    #[test]
    fn a_wrong_or_malformed_entry_does_not_match() {
        let issued = issue(b"k");
        let wrong = if issued.code == "000000" {
            "000001"
        } else {
            "000000"
        };
        assert!(!matches(b"k", &issued.hash, wrong));
        assert!(!matches(b"k", &issued.hash, ""));
        assert!(!matches(b"k", "garbage", &issued.code));
    }
}
