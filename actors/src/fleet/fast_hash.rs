//! A fast hasher for 64-bit keys (H3 cells, unit ids) on the hot path of the fleet index.
//!
//! SipHash's DoS resistance buys nothing here (keys come from our own cells and ids) and costs
//! a third of a lookup. H3 indexes keep their unused low digits set to 1, so the mixer folds the high
//! bits down before multiplying.

use std::hash::{BuildHasherDefault, Hasher};

/// Odd 64-bit constant from the golden ratio (Fibonacci hashing).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Hasher state: the mixed key.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, key: u64) {
        let folded = (self.0.rotate_left(5) ^ key ^ (key >> 29)).wrapping_mul(GOLDEN);
        self.0 = folded ^ (folded >> 32);
    }
}

/// Builds [`KeyHasher`]s for `HashMap`.
pub type BuildKeyHasher = BuildHasherDefault<KeyHasher>;
