//! Unguessable-enough identifiers (tokens, request ids) without a `rand` crate.
//! SipHash under a per-process random key, over a counter: unique, and not
//! predictable from earlier values by a client that cannot see the key.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct Ids {
    key: RandomState,
    counter: AtomicU64,
}

impl Ids {
    pub(crate) fn new() -> Ids {
        Ids {
            key: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// 128 fresh bits as 32 lowercase hex digits.
    pub(crate) fn next_hex(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{:016x}", self.hash(n, 0), self.hash(n, 1))
    }

    /// A fresh id shaped like a UUID, as gateways put in `x-request-id`.
    pub(crate) fn request_id(&self) -> String {
        let h = self.next_hex();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    fn hash(&self, n: u64, lane: u8) -> u64 {
        let mut hasher = self.key.build_hasher();
        hasher.write_u64(n);
        hasher.write_u8(lane);
        hasher.finish()
    }
}
