//! What one sandbox's handlers share with its owner: users, tokens, fault
//! queues, request counters and the Demand API's records.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::demand::Demand;
use crate::fault::FaultQueues;
use crate::ids::Ids;
use crate::operation::Operation;
use crate::tokens::TokenStore;

pub(crate) struct Shared {
    /// The address the sandbox listens on: the origin of the absolute URLs
    /// in answers when the request's `Host` is not one to trust.
    pub(crate) addr: SocketAddr,
    /// In the order they were added; the first is the user an authorization
    /// code logs in as. Names are unique.
    pub(crate) users: Vec<(String, String)>,
    pub(crate) ids: Ids,
    tokens: Mutex<TokenStore>,
    faults: Mutex<FaultQueues>,
    demand: Mutex<Demand>,
    counts: [AtomicU64; Operation::ALL.len()],
}

impl Shared {
    pub(crate) fn new(
        addr: SocketAddr,
        users: Vec<(String, String)>,
        tokens: TokenStore,
        demand: Demand,
    ) -> Shared {
        Shared {
            addr,
            users,
            ids: Ids::new(),
            tokens: Mutex::new(tokens),
            faults: Mutex::new(FaultQueues::default()),
            demand: Mutex::new(demand),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(crate) fn password_of(&self, username: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(name, _)| name == username)
            .map(|(_, password)| password.as_str())
    }

    // A panic elsewhere while holding a lock must not make every later request
    // panic too: the data under these locks stays consistent between calls.
    pub(crate) fn tokens(&self) -> MutexGuard<'_, TokenStore> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, FaultQueues> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn demand(&self) -> MutexGuard<'_, Demand> {
        self.demand.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn bump(&self, operation: Operation) {
        self.counts[operation.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count(&self, operation: Operation) -> u64 {
        self.counts[operation.index()].load(Ordering::Relaxed)
    }
}
