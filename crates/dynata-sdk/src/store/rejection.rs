//! A rejected login, remembered in the store: the processes sharing it then
//! do not each send the same rejected password. An identity server that locks
//! an account after a few failed logins counts every one of them, so a fleet
//! of twenty processes with an outdated password must not cost twenty.
//!
//! The record says which credentials were rejected without holding them: a
//! PBKDF2-HMAC-SHA256 of the password and client secret, with a random salt
//! and OWASP's 600,000 iterations, so that whoever reads the store cannot
//! cheaply guess the (often only outdated) password. A process whose
//! credentials differ (the corrected password) is not held back by it.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use dynata_auth_api::Secret;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::codec::{from_hex, to_hex};
use super::session::{from_unix_millis, unix_millis};

const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;
/// OWASP's recommendation for PBKDF2-HMAC-SHA256 (2023). About 0.1 s in an
/// optimized build, paid only by a login while a rejection is on record.
const ITERATIONS: u32 = 600_000;
/// Fewer are refused when read: a record must not make the check cheap.
pub(crate) const MIN_ITERATIONS: u32 = 100_000;
/// More are refused when read: a record must not make the check hang.
pub(crate) const MAX_ITERATIONS: u32 = 10_000_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// A login Dynata rejected, as another process sharing the store saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginRejection {
    /// The HTTP status of the rejection, 400 or 401.
    pub status: u16,
    /// Dynata's error code, such as `invalid_grant`.
    pub error: Option<String>,
    /// Until when the same credentials are not sent again.
    pub until: SystemTime,
}

impl LoginRejection {
    /// A refusal with `status` (a 4xx) and Dynata's `error` code, held
    /// until `until`.
    pub fn new(status: u16, error: Option<String>, until: SystemTime) -> Self {
        LoginRejection {
            status,
            error,
            until,
        }
    }
}

/// The stored record: the rejection, and what the credentials hash to.
pub(crate) struct Record {
    rejection: LoginRejection,
    iterations: NonZeroU32,
    salt: [u8; SALT_LEN],
    hash: [u8; HASH_LEN],
}

impl Record {
    /// A record of `rejection` for these credentials. Slow by design: run it
    /// off the async runtime's threads.
    pub(crate) fn new(
        rejection: LoginRejection,
        password: &Secret,
        client_secret: Option<&Secret>,
    ) -> Self {
        let mut salt = [0u8; SALT_LEN];
        // Without randomness (unreachable on supported platforms) the salt is
        // the time: unique enough, and the iterations still make guesses slow.
        if SystemRandom::new().fill(&mut salt).is_err() {
            salt.copy_from_slice(&unix_nanos().to_le_bytes());
        }
        let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
        let mut hash = [0u8; HASH_LEN];
        pbkdf2::derive(
            ALGORITHM,
            iterations,
            &salt,
            &material(password, client_secret),
            &mut hash,
        );
        Record {
            rejection,
            iterations,
            salt,
            hash,
        }
    }

    /// Whether these are the credentials that were rejected (compared in
    /// constant time). Slow by design, like [`Record::new`].
    pub(crate) fn matches(&self, password: &Secret, client_secret: Option<&Secret>) -> bool {
        pbkdf2::verify(
            ALGORITHM,
            self.iterations,
            &self.salt,
            &material(password, client_secret),
            &self.hash,
        )
        .is_ok()
    }

    /// The rejection, if it still holds at `now`. One that claims to hold
    /// for longer than [`LONGEST_KEPT`] from `now`, beyond what clocks of
    /// one fleet differ by ([`CLOCKS_DIFFER_BY`]), was not written by this
    /// SDK (another build, a hand, or a clock since stepped back): it does
    /// not hold at all, and is removed like an expired one. Capping it
    /// instead would honour it for ever, a day at a time.
    pub(crate) fn in_force(&self, now: SystemTime) -> Option<LoginRejection> {
        let latest = now.checked_add(LONGEST_KEPT + CLOCKS_DIFFER_BY)?;
        if self.rejection.until <= now || self.rejection.until > latest {
            return None;
        }
        Some(self.rejection.clone())
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let wire = Wire {
            version: 1,
            until: unix_millis(self.rejection.until),
            status: self.rejection.status,
            error: self.rejection.error.clone(),
            iterations: self.iterations.get(),
            salt: to_hex(&self.salt),
            hash: to_hex(&self.hash),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// `None` for anything that is not a record this build wrote.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let wire: Wire = serde_json::from_slice(bytes).ok()?;
        let iterations = NonZeroU32::new(wire.iterations)
            .filter(|n| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&n.get()))?;
        (wire.version == 1 && (400..500).contains(&wire.status)).then_some(())?;
        Some(Record {
            rejection: LoginRejection {
                status: wire.status,
                error: wire.error.filter(|code| is_error_code(code)),
                until: from_unix_millis(wire.until)?,
            },
            iterations,
            salt: from_hex(&wire.salt)?,
            hash: from_hex(&wire.hash)?,
        })
    }
}

/// What is hashed: the password, and the client secret if there is one (a
/// rejected login may be the client's fault), each after its length, so
/// that no two pairs give the same bytes (`("a\0b", None)` and
/// `("a", Some("b"))`, say).
fn material(password: &Secret, client_secret: Option<&Secret>) -> zeroize::Zeroizing<Vec<u8>> {
    let mut material = zeroize::Zeroizing::new(Vec::new());
    for part in [Some(password), client_secret].into_iter().flatten() {
        let bytes = part.expose_secret().as_bytes();
        material.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        material.extend_from_slice(bytes);
    }
    material
}

/// Whether a rejected login is the identity server refusing the credentials
/// (the OAuth codes Keycloak answers a wrong password or client secret
/// with), the only rejection worth keeping for the fleet: a bare 401 from a
/// gateway says nothing about the password.
pub(crate) fn refuses_credentials(error: Option<&str>) -> bool {
    matches!(error, Some("invalid_grant" | "invalid_client"))
}

/// Dynata's error codes are short identifiers; anything else is not kept
/// (it could be an echo of what was sent).
pub(crate) fn is_error_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The longest a rejection is kept: for a client without a cooldown (which
/// never tries again by itself) or with a longer one. Long enough for a
/// fleet to stop asking, short enough to expire.
pub(crate) const LONGEST_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// How far ahead of a reader's clock a writer's may be, for a record of the
/// longest cooldown to hold: generous, as a refusal sent again risks
/// locking the account, while the bound is there only for records no
/// correct writer makes.
pub(crate) const CLOCKS_DIFFER_BY: Duration = Duration::from_secs(60 * 60);

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    version: u8,
    until: u64,
    status: u16,
    error: Option<String>,
    iterations: u32,
    salt: String,
    hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection() -> LoginRejection {
        LoginRejection {
            status: 401,
            error: Some("invalid_grant".into()),
            until: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        }
    }

    #[test]
    fn a_record_knows_its_credentials_and_holds_none_of_them() {
        let password = Secret::new("correct horse battery");
        let client_secret = Secret::new("client-secret-value");
        let record = Record::new(rejection(), &password, Some(&client_secret));
        let encoded = record.encode();
        let text = String::from_utf8(encoded.clone()).expect("JSON");
        assert!(!text.contains("horse"), "{text}");
        assert!(!text.contains("client-secret"), "{text}");

        let decoded = Record::decode(&encoded).expect("decodes");
        assert_eq!(decoded.rejection, rejection());
        assert!(decoded.matches(&password, Some(&client_secret)));
        assert!(!decoded.matches(&Secret::new("correct horse battery!"), Some(&client_secret)));
        assert!(!decoded.matches(&password, None));
        assert!(!decoded.matches(&password, Some(&Secret::new("other"))));
        // The parts stay apart: a NUL in the password is no separator.
        let joined = Record::new(rejection(), &Secret::new("a\0b"), None);
        assert!(!joined.matches(&Secret::new("a"), Some(&Secret::new("b"))));
        // Same material twice: the random salt makes the records differ.
        assert_ne!(
            Record::new(rejection(), &password, None).encode(),
            Record::new(rejection(), &password, None).encode()
        );
    }

    #[test]
    fn a_record_holds_until_its_time_and_one_beyond_a_day_not_at_all() {
        let record = Record::new(rejection(), &Secret::new("pw"), None);
        let until = rejection().until;
        let second = Duration::from_secs(1);
        assert_eq!(record.in_force(until), None);
        assert_eq!(record.in_force(until + second), None);
        assert_eq!(
            record.in_force(until - second).map(|r| r.until),
            Some(until)
        );
        assert_eq!(
            record.in_force(until - LONGEST_KEPT).map(|r| r.until),
            Some(until)
        );
        // Written by a clock a little ahead of the reader's: it holds.
        assert_eq!(
            record
                .in_force(until - LONGEST_KEPT - CLOCKS_DIFFER_BY)
                .map(|r| r.until),
            Some(until)
        );
        // Claiming more than that: not honoured at all (it was capped to a
        // day from each read before, so honoured for ever).
        let too_early = until - LONGEST_KEPT - CLOCKS_DIFFER_BY - second;
        assert_eq!(record.in_force(too_early), None);
        assert_eq!(record.in_force(until - LONGEST_KEPT * 3), None);
    }

    #[test]
    fn a_record_that_is_not_ours_decodes_to_nothing() {
        let good = String::from_utf8(Record::new(rejection(), &Secret::new("pw"), None).encode())
            .expect("JSON");
        let cheap = good.replace("\"iterations\":600000", "\"iterations\":1");
        let endless = good.replace("\"iterations\":600000", "\"iterations\":4000000000");
        let version = good.replace("\"version\":1", "\"version\":2");
        let short_salt = good.replacen("\"salt\":\"", "\"salt\":\"00", 1);
        for bad in [
            "",
            "null",
            "{}",
            "garbage",
            cheap.as_str(),
            endless.as_str(),
            version.as_str(),
            short_salt.as_str(),
        ] {
            assert!(Record::decode(bad.as_bytes()).is_none(), "{bad}");
        }
        // An error code that could be an echo of the request is dropped.
        let echo = good.replace("invalid_grant", "pw was wrong");
        let decoded = Record::decode(echo.as_bytes()).expect("still a record");
        assert_eq!(decoded.rejection.error, None);
    }
}
