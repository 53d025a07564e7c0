//! `RedisStore`: one session for a fleet of processes, through Redis.
//!
//! The session is a string under the account's key that expires with the
//! longer-lived of its two tokens (`SET ... PX`). The renewal lease is `<key>:lease`, taken
//! with `SET NX PX` and a random owner, released by a compare-and-delete
//! script, so only its holder releases it and a holder that dies frees it
//! after its time to live: the single-instance lock Redis documents. A holder
//! extends it with a compare-and-`PEXPIRE` script while its renewal runs. A
//! refused login is recorded under `<key>:rejected`, which expires with its
//! cooldown. Waiters
//! poll with backoff. The tokio connection manager reconnects when the
//! connection drops; after a `READONLY` answer (a failover behind one
//! address) the store drops the connection and the next operation connects
//! afresh (not after a timeout: a new connection costs round trips of its
//! own). Every command has a short time limit, and a Redis that is down
//! makes the clients renew on their own until it is back. A value larger
//! than any record (64 KiB) is refused in Redis, unread, as unusable
//! content.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::codec::MAX_RECORD_BYTES;
use super::{
    DEFAULT_KEY_PREFIX, EncryptionKey, LONGEST_TTL, LeaseOwner, SessionCodec, StoreError,
    StoreFuture, StoreKey, StoredSession, TokenStore,
};

/// Deletes the lease only if `owner` still holds it: a GET and a DEL that no
/// other client's command can come between.
const RELEASE_SCRIPT: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// Moves the lease's expiry only if `owner` still holds it, atomically like
/// [`RELEASE_SCRIPT`].
const EXTEND_SCRIPT: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end"#;

/// Reads a record only if it is no larger than `ARGV[1]` bytes; a larger
/// value (another program's, or planted) is refused in Redis, unread, as
/// `OVERSIZED`. `STRLEN` of a missing key is 0; of another type, WRONGTYPE.
const GET_BOUNDED_SCRIPT: &str = r#"if redis.call("STRLEN", KEYS[1]) > tonumber(ARGV[1]) then return redis.error_reply("OVERSIZED the value is larger than any record") end return redis.call("GET", KEYS[1])"#;

/// Sessions in Redis, shared by every process that can reach it. See the
/// [module documentation](super) for what anyone who can read the keys can
/// do, and [`RedisStore::with_encryption`].
///
/// `Debug` and every error show the URL with its password replaced by `***`.
pub struct RedisStore {
    client: redis::Client,
    /// The connection, made on first use; dropped when it may be to a
    /// server that no longer serves as the primary (see [`Self::query_answer`]).
    manager: Mutex<Option<ConnectionManager>>,
    redacted_url: String,
    password: Option<String>,
    codec: SessionCodec,
    timeout: Duration,
    prefix: String,
}

impl RedisStore {
    /// A store at `url`: `redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` for TLS, the server's certificate checked against the
    /// platform's root certificates (or those in `SSL_CERT_FILE` or
    /// `SSL_CERT_DIR`, when set: a private CA's, say). Nothing
    /// is sent until the first use; a Redis that is down then is retried on
    /// every later use.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let parsed = url::Url::parse(url).map_err(|e| StoreError::Config {
            message: format!("the Redis URL does not parse: {e}"),
        })?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(StoreError::Config {
                message: format!(
                    "a Redis URL starts with redis:// or rediss://, not {}://",
                    parsed.scheme()
                ),
            });
        }
        let password = parsed.password().map(str::to_string);
        let redacted_url = redact(&parsed);
        let client = redis::Client::open(url).map_err(|e| StoreError::Config {
            message: scrub(
                &format!("the Redis URL {redacted_url} is not usable: {e}"),
                password.as_deref(),
            ),
        })?;
        Ok(RedisStore {
            client,
            manager: Mutex::new(None),
            redacted_url,
            password,
            codec: SessionCodec::plain(),
            timeout: Duration::from_secs(1),
            prefix: DEFAULT_KEY_PREFIX.to_string(),
        })
    }

    /// Seals every record with AES-256-GCM under `key`.
    pub fn with_encryption(self, key: EncryptionKey) -> Self {
        self.with_codec(SessionCodec::encrypted(key))
    }

    /// Reads and writes records with `codec`.
    pub fn with_codec(mut self, codec: SessionCodec) -> Self {
        self.codec = codec;
        self
    }

    /// The time limit of a connection attempt and of a command's answer
    /// (default 1 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Names keys `<prefix><digest>` (and `<prefix><digest>:lease`); default
    /// [`DEFAULT_KEY_PREFIX`]. Give each application sharing a Redis its own,
    /// or match your ACL's key patterns.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The Redis key holding the session of `key`.
    pub fn session_key(&self, key: &StoreKey) -> String {
        format!("{}{}", self.prefix, key.digest())
    }

    /// The Redis key recording the last login Dynata rejected for `key`'s account.
    pub fn rejected_login_key(&self, key: &StoreKey) -> String {
        format!("{}{}:rejected", self.prefix, key.digest())
    }

    /// The Redis key holding the renewal lease of `key`.
    pub fn lease_key(&self, key: &StoreKey) -> String {
        format!("{}{}:lease", self.prefix, key.digest())
    }

    /// The URL, its password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.manager.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(manager) = &*slot {
            return Ok(manager.clone());
        }
        // rustls (`rediss://`) takes the process-wide crypto provider: ring,
        // as for the HTTP client, unless the application chose one. In a
        // build without the `rustls` feature this does nothing, and rustls
        // finds ring by its crate features (this crate's `redis` feature
        // turns it on).
        dynata_auth_api::ensure_crypto_provider();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            // Reconnect quickly once Redis is back; while it is down,
            // every command fails fast and clients renew on their own.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| self.error(&e))?;
        *slot = Some(manager.clone());
        Ok(manager)
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, StoreError> {
        self.query_answer(command)
            .await?
            .map_err(|e| self.error(&e))
    }

    /// Redis's own answer to `command`, error included; the outer error is
    /// no answer at all (no connection, or none in time).
    async fn query_answer<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<Result<T, redis::RedisError>, StoreError> {
        let mut connection = self.connection()?;
        let answer = tokio::time::timeout(self.timeout, command.query_async(&mut connection)).await;
        // After a failover behind one name (Sentinel, a cloud's endpoint),
        // the connection may stay open to the demoted primary, which answers
        // reads and refuses every write (`READONLY`). The connection manager
        // reconnects only when the connection drops: the next operation
        // connects afresh. Not after a timeout: a new connection costs round
        // trips of its own, so a Redis slow for a moment would then time out
        // every operation after it.
        if matches!(&answer, Ok(Err(error)) if is_reply(error, "READONLY")) {
            *self.manager.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        answer.map_err(|_| StoreError::Timeout {
            operation: "redis command",
            after: self.timeout,
        })
    }

    /// The record under `name`, read only if it can be one (at most
    /// [`MAX_RECORD_BYTES`]). Another program's value under our key (a hash,
    /// a list, something huge) is unusable content, replaced by the next
    /// `SET`, not a store to give up on.
    async fn get_record(&self, name: String) -> Result<Option<Vec<u8>>, StoreError> {
        let answer = self
            .query_answer(
                redis::cmd("EVAL")
                    .arg(GET_BOUNDED_SCRIPT)
                    .arg(1)
                    .arg(name)
                    .arg(MAX_RECORD_BYTES),
            )
            .await?;
        match answer {
            Ok(record) => Ok(record),
            Err(e) if is_reply(&e, "OVERSIZED") => Err(StoreError::Corrupt {
                reason: "the key holds a value larger than any record".into(),
            }),
            Err(e) if is_reply(&e, "WRONGTYPE") => Err(StoreError::Corrupt {
                reason: "the key holds a Redis value that is not a string".into(),
            }),
            Err(e) => Err(self.error(&e)),
        }
    }

    fn error(&self, error: &redis::RedisError) -> StoreError {
        StoreError::Unavailable {
            message: scrub(
                &format!("Redis at {}: {error}", self.redacted_url),
                self.password.as_deref(),
            ),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.redacted_url)
            .field("encrypted", &self.codec.is_encrypted())
            .field("timeout", &self.timeout)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TokenStore for RedisStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        Box::pin(async move {
            let record = self.get_record(self.session_key(key)).await?;
            record
                .map(|record| self.codec.decode(key, &zeroize::Zeroizing::new(record)))
                .transpose()
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        session: &'a StoredSession,
        now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let record = zeroize::Zeroizing::new(self.codec.encode(key, session)?);
            // The entry lives as long as one of its tokens: past that it is
            // no use to anyone. Most often the refresh token outlives the
            // access token, but not always (Keycloak, behind Dynata's auth
            // API, shortens the refresh token's life as the login session
            // nears its end), and the access token is worth sharing while
            // it lives.
            let keep = session
                .refresh_expires_at
                .max(session.access_expires_at)
                .duration_since(now)
                .unwrap_or_default()
                .max(Duration::from_millis(1));
            let () = self
                .query(
                    redis::cmd("SET")
                        .arg(self.session_key(key))
                        .arg(&record[..])
                        .arg("PX")
                        .arg(millis(keep)),
                )
                .await?;
            Ok(())
        })
    }

    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let _removed: i64 = self
                .query(redis::cmd("DEL").arg(self.session_key(key)))
                .await?;
            Ok(())
        })
    }

    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        _now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // Redis keeps the time itself: hosts' clocks do not matter here.
            let set: Option<String> = self
                .query(
                    redis::cmd("SET")
                        .arg(self.lease_key(key))
                        .arg(owner.as_str())
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(ttl).max(1)),
                )
                .await?;
            Ok(set.is_some())
        })
    }

    fn extend_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        _now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let extended: i64 = self
                .query(
                    redis::cmd("EVAL")
                        .arg(EXTEND_SCRIPT)
                        .arg(1)
                        .arg(self.lease_key(key))
                        .arg(owner.as_str())
                        .arg(millis(ttl).max(1)),
                )
                .await?;
            Ok(extended == 1)
        })
    }

    fn load_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let record = self.get_record(self.rejected_login_key(key)).await?;
            match record {
                Some(record) => Ok(Some(self.codec.open(key, &record)?.to_vec())),
                None => Ok(None),
            }
        })
    }

    fn save_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a [u8],
        ttl: Duration,
        _now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let record = self.codec.seal(key, record)?;
            let _: Option<String> = self
                .query(
                    redis::cmd("SET")
                        .arg(self.rejected_login_key(key))
                        .arg(record)
                        .arg("PX")
                        .arg(millis(ttl).max(1)),
                )
                .await?;
            Ok(())
        })
    }

    fn remove_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let _removed: i64 = self
                .query(redis::cmd("DEL").arg(self.rejected_login_key(key)))
                .await?;
            Ok(())
        })
    }

    fn release_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let deleted: i64 = self
                .query(
                    redis::cmd("EVAL")
                        .arg(RELEASE_SCRIPT)
                        .arg(1)
                        .arg(self.lease_key(key))
                        .arg(owner.as_str()),
                )
                .await?;
            Ok(deleted == 1)
        })
    }
}

/// Whether Redis answered the error `code`: as its code, or inside a
/// script's error, which Redis before 7 reports as `ERR Error running
/// script … <code> …`.
fn is_reply(error: &redis::RedisError, code: &str) -> bool {
    error.code() == Some(code) || error.to_string().contains(code)
}

/// For `PX`: Redis refuses a time it cannot add to its clock.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.min(LONGEST_TTL).as_millis()).unwrap_or(u64::MAX)
}

/// The URL with its password (if any) replaced by `***`.
fn redact(url: &url::Url) -> String {
    let mut redacted = url.clone();
    if redacted.password().is_some() {
        // Cannot fail for redis:// URLs, which have a host.
        let _ = redacted.set_password(Some("***"));
    }
    redacted.to_string()
}

/// Removes a password from a message, should a library have quoted it.
fn scrub(message: &str, password: Option<&str>) -> String {
    match password {
        Some(password) if !password.is_empty() => message.replace(password, "***"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_password_never_shows() {
        let store = RedisStore::new("rediss://app:hunter2@redis.internal:6380/2").expect("valid");
        let debug = format!("{store:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("rediss://app:***@redis.internal:6380/2"),
            "{debug}"
        );
        assert_eq!(
            scrub("auth hunter2 failed", Some("hunter2")),
            "auth *** failed"
        );
    }

    #[test]
    fn other_schemes_are_refused_with_a_clear_error() {
        let error = RedisStore::new("http://user:hunter2@localhost").expect_err("not redis");
        assert!(error.to_string().contains("redis://"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(RedisStore::new("not a url").is_err());
    }
}
