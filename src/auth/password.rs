//! Argon2id password hashing with OWASP parameters, run off the async workers, a bounded number at a
//! time.
//!
//! Each hash takes 19 MiB for its duration. Hashes run at most one per core at once; a few more wait
//! their turn, and past that a request is answered 503 with `Retry-After` instead of queueing memory
//! without limit: a burst of logins costs at most one 19 MiB block per core.

use std::sync::{
    LazyLock, OnceLock,
    atomic::{AtomicUsize, Ordering},
};

use argon2::{
    Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version, password_hash::phc::PasswordHash,
};
use tokio::sync::Semaphore;

/// OWASP 2023 minimum for Argon2id: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
/// Hashes allowed in line (running or waiting) per core before requests are turned away.
const IN_LINE_PER_CORE: usize = 8;

/// Read once: `available_parallelism` reads cgroup files on Linux, too slow for every login.
fn cores() -> usize {
    static CORES: LazyLock<usize> =
        LazyLock::new(|| std::thread::available_parallelism().map_or(2, usize::from));
    *CORES
}

/// One permit per core: the hashes running at once.
static RUNNING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(cores()));
/// Hashes running or waiting for a permit.
static IN_LINE: AtomicUsize = AtomicUsize::new(0);

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too many password checks in progress: retry in a moment.
    #[error("too many password checks in progress; retry in a moment")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Leaves the line when dropped (also when the request is abandoned while waiting).
struct InLine;

impl Drop for InLine {
    fn drop(&mut self) {
        IN_LINE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `work` (one hash) on the blocking pool once a core is free, or answers `Busy` at once when the
/// line is full.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, PasswordError> {
    if IN_LINE.fetch_add(1, Ordering::AcqRel) >= cores() * IN_LINE_PER_CORE {
        IN_LINE.fetch_sub(1, Ordering::AcqRel);
        return Err(PasswordError::Busy);
    }
    let _in_line = InLine;
    let permit = RUNNING
        .acquire()
        .await
        .map_err(|e| PasswordError::Failed(anyhow::anyhow!("{e}")))?;
    let outcome = tokio::task::spawn_blocking(work).await;
    drop(permit);
    Ok(outcome.map_err(anyhow::Error::from)??)
}

fn hasher() -> Result<Argon2<'static>, anyhow::Error> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string (the salt is generated inside).
pub async fn hash(password: String) -> Result<String, PasswordError> {
    bounded(move || {
        let hash = hasher()?
            .hash_password(password.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(hash.to_string())
    })
    .await
}

/// Checks a password against a stored PHC string. With no stored hash (unknown user, OTP-only
/// account) it still spends the same work on a dummy hash, so the answer's timing does not reveal
/// whether the account exists.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, PasswordError> {
    bounded(move || {
        let known = stored.is_some();
        let phc = match stored {
            Some(phc) => phc,
            None => dummy_hash()?.to_owned(),
        };
        let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let matches = hasher()?.verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(known && matches)
    })
    .await
}

/// A hash of a random password with the same parameters, computed once.
fn dummy_hash() -> anyhow::Result<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let random: [u8; 16] = rand::random();
    let hash = hasher()?
        .hash_password(&random)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    Ok(DUMMY.get_or_init(|| hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_uses_owasp_parameters() {
        let phc = hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse".into(), Some(phc.clone())).await.unwrap());
        assert!(!verify("wrong horse".into(), Some(phc)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}
