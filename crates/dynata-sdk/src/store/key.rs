//! Store key names: one per account, never carrying the username in clear.

use std::fmt;

use ring::digest::{SHA256, digest};

use super::codec::to_hex;

/// The prefix of key names unless the store is told otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "dynata-sdk:session:";

/// Where a store keeps one account's session: a prefix and the SHA-256 of the
/// base URL, client id and username. Two clients share a session exactly when
/// all three match; someone listing the store learns how many accounts use it,
/// not which.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreKey {
    name: String,
    digest: String,
}

impl StoreKey {
    /// The key for an account, under [`DEFAULT_KEY_PREFIX`].
    pub fn for_account(base_url: &str, client_id: &str, username: &str) -> Self {
        StoreKey::with_prefix(DEFAULT_KEY_PREFIX, base_url, client_id, username)
    }

    /// The key for an account under a prefix of your own (one per
    /// application sharing a Redis, say).
    pub fn with_prefix(prefix: &str, base_url: &str, client_id: &str, username: &str) -> Self {
        // Each field is length-prefixed, so no two different triples hash alike.
        let mut input = b"dynata-sdk session v1".to_vec();
        for field in [base_url.trim_end_matches('/'), client_id, username] {
            input.extend_from_slice(&(field.len() as u64).to_be_bytes());
            input.extend_from_slice(field.as_bytes());
        }
        let digest = to_hex(digest(&SHA256, &input).as_ref());
        StoreKey {
            name: format!("{prefix}{digest}"),
            digest,
        }
    }

    /// The full name: prefix and digest (a Redis key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The digest alone, 64 hex digits (a file name).
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_hides_the_account_and_separates_accounts() {
        let key = StoreKey::for_account("https://api.dynata.com/", "api", "alice@example.com");
        assert!(key.name().starts_with(DEFAULT_KEY_PREFIX));
        assert!(!key.name().contains("alice"));
        assert_eq!(key.digest().len(), 64);
        assert_eq!(
            key,
            StoreKey::for_account("https://api.dynata.com", "api", "alice@example.com"),
            "a trailing slash names the same host"
        );
        let others = [
            StoreKey::for_account("https://api.uat.pe.dynata.com", "api", "alice@example.com"),
            StoreKey::for_account("https://api.dynata.com", "other", "alice@example.com"),
            StoreKey::for_account("https://api.dynata.com", "api", "bob@example.com"),
            StoreKey::for_account("https://api.dynata.com", "apialice@example.com", ""),
        ];
        for other in others {
            assert_ne!(key.digest(), other.digest());
        }
        let prefixed = StoreKey::with_prefix(
            "app1:",
            "https://api.dynata.com",
            "api",
            "alice@example.com",
        );
        assert_eq!(prefixed.name(), format!("app1:{}", key.digest()));
    }
}
