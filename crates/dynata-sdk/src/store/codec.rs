//! The bytes a store keeps: a versioned record, optionally sealed with
//! AES-256-GCM under a key the user supplies.
//!
//! Layout (format 1):
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | `DYNSESS1`: magic and format version |
//! | 8 | `0`: plain JSON follows; `1`: AES-256-GCM follows |
//! | plain | the session as JSON (camelCase, times in Unix milliseconds) |
//! | sealed | key id (8 bytes), nonce (12 bytes, random per write), ciphertext and tag |
//!
//! The sealed form authenticates the header and the account's digest too, so
//! a record copied under another account's key does not decrypt.

use std::fmt;

use dynata_auth_api::Secret;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::session::{from_unix_millis, unix_millis};
use super::{StoreError, StoreKey, StoredSession};

const MAGIC: &[u8; 8] = b"DYNSESS1";

/// Said of a record sealed otherwise than this store seals: replacing it
/// mends nothing while the other processes keep writing theirs.
const DIFFERENT_KEYS: &str = "; if processes sharing this store are configured with different encryption keys (or some with none), they replace each other's sessions and share nothing: give them all the same";
const PLAIN: u8 = 0;
const AES_256_GCM_SEALED: u8 = 1;
const KEY_ID_LEN: usize = 8;
const HEADER_LEN: usize = MAGIC.len() + 1;
/// No session record comes near this; a larger value is not ours.
pub(crate) const MAX_RECORD_BYTES: usize = 64 * 1024;

/// A 256-bit key that seals stored sessions with AES-256-GCM.
///
/// Every process sharing a store needs the same key. `Debug` shows only the
/// key id (a digest prefix, which says nothing about the key), so logs can
/// tell two keys apart without revealing either.
#[derive(Clone)]
pub struct EncryptionKey {
    key: Zeroizing<[u8; 32]>,
    id: [u8; KEY_ID_LEN],
}

impl EncryptionKey {
    /// A key from 32 bytes. Generate them with a CSPRNG (for example
    /// `openssl rand -hex 32`) and keep them with your other secrets.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        // Holds the key: zeroed like it, not left in freed memory.
        let mut input = Zeroizing::new(b"dynata-sdk token store key id\0".to_vec());
        input.extend_from_slice(&bytes);
        let hash = digest(&SHA256, &input);
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&hash.as_ref()[..KEY_ID_LEN]);
        EncryptionKey {
            key: Zeroizing::new(bytes),
            id,
        }
    }

    /// A key from 64 hexadecimal digits, as `openssl rand -hex 32` prints.
    pub fn from_hex(hex: &str) -> Result<Self, StoreError> {
        let hex = hex.trim();
        let invalid = || StoreError::Config {
            message: "an encryption key is 64 hexadecimal digits (32 bytes)".into(),
        };
        let bytes = Zeroizing::new(from_hex::<32>(hex).ok_or_else(invalid)?);
        Ok(EncryptionKey::from_bytes(*bytes))
    }

    /// The key id written beside every sealed record, in hex.
    pub fn id(&self) -> String {
        to_hex(&self.id)
    }

    fn aead(&self) -> LessSafeKey {
        // The length is right by construction, so this cannot fail.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &*self.key).expect("a 32-byte key"))
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id())
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// How a store turns sessions into bytes and back: plain, or sealed.
#[derive(Clone, Debug, Default)]
pub struct SessionCodec {
    key: Option<EncryptionKey>,
}

impl SessionCodec {
    /// Records in clear. Anyone who can read the store can use the tokens:
    /// see the module documentation.
    pub fn plain() -> Self {
        SessionCodec { key: None }
    }

    /// Records sealed with AES-256-GCM under `key`.
    pub fn encrypted(key: EncryptionKey) -> Self {
        SessionCodec { key: Some(key) }
    }

    /// Whether records are sealed.
    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// The record for `session` stored under `key`.
    pub fn encode(&self, key: &StoreKey, session: &StoredSession) -> Result<Vec<u8>, StoreError> {
        let wire = Wire {
            issued_at: unix_millis(session.issued_at),
            access_token: session.access_token.clone(),
            access_expires_at: unix_millis(session.access_expires_at),
            refresh_token: session.refresh_token.clone(),
            refresh_expires_at: unix_millis(session.refresh_expires_at),
        };
        let json = Zeroizing::new(serde_json::to_vec(&wire).map_err(|e| StoreError::Config {
            message: format!("a session could not be serialized: {e}"),
        })?);
        self.seal(key, &json)
    }

    /// `plain` as a record stored under `key`: in clear, or sealed with the
    /// key. Sessions and the rejected-login record both go through it, so
    /// an encrypted store holds nothing readable.
    pub(crate) fn seal(&self, key: &StoreKey, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut record = MAGIC.to_vec();
        match &self.key {
            None => {
                record.push(PLAIN);
                record.extend_from_slice(plain);
            }
            Some(encryption) => {
                record.push(AES_256_GCM_SEALED);
                record.extend_from_slice(&encryption.id);
                let mut nonce = [0u8; NONCE_LEN];
                SystemRandom::new()
                    .fill(&mut nonce)
                    .map_err(|_| StoreError::Config {
                        message: "the system's random number generator failed".into(),
                    })?;
                let aad = aad(&record, key);
                let mut sealed = Zeroizing::new(plain.to_vec());
                encryption
                    .aead()
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(&aad),
                        &mut *sealed,
                    )
                    .map_err(|_| StoreError::Config {
                        message: "a record could not be encrypted".into(),
                    })?;
                record.extend_from_slice(&nonce);
                record.extend_from_slice(&sealed);
            }
        }
        Ok(record)
    }

    /// The session in `record`, stored under `key`. A record that is not
    /// ours, truncated, tampered with, or sealed with another key is
    /// [`StoreError::Corrupt`], whose message never quotes the record.
    pub fn decode(&self, key: &StoreKey, record: &[u8]) -> Result<StoredSession, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            reason: reason.to_string(),
        };
        let plain = self.open(key, record)?;
        let wire: Wire = serde_json::from_slice(&plain)
            .map_err(|_| corrupt("the session is not valid JSON of the expected shape"))?;
        let time =
            |millis| from_unix_millis(millis).ok_or_else(|| corrupt("a time is out of range"));
        let session = StoredSession {
            issued_at: time(wire.issued_at)?,
            access_token: wire.access_token,
            access_expires_at: time(wire.access_expires_at)?,
            refresh_token: wire.refresh_token,
            refresh_expires_at: time(wire.refresh_expires_at)?,
        };
        if session.access_expires_at < session.issued_at
            || session.refresh_expires_at < session.issued_at
        {
            return Err(corrupt("an expiry is earlier than the issue time"));
        }
        Ok(session)
    }

    /// The plain bytes of `record`, stored under `key`: checked, and
    /// decrypted if sealed. The inverse of [`SessionCodec::seal`].
    pub(crate) fn open(
        &self,
        key: &StoreKey,
        record: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            reason: reason.to_string(),
        };
        if record.len() > MAX_RECORD_BYTES {
            return Err(corrupt("the record is larger than any session"));
        }
        if record.len() < HEADER_LEN || &record[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not a session record of format 1"));
        }
        let plain: Zeroizing<Vec<u8>> = match (record[MAGIC.len()], &self.key) {
            (PLAIN, None) => Zeroizing::new(record[HEADER_LEN..].to_vec()),
            (PLAIN, Some(_)) => {
                return Err(corrupt(&format!(
                    "the record is in clear but this store expects encrypted records{DIFFERENT_KEYS}"
                )));
            }
            (AES_256_GCM_SEALED, None) => {
                return Err(corrupt(&format!(
                    "the record is encrypted and this store has no encryption key{DIFFERENT_KEYS}"
                )));
            }
            (AES_256_GCM_SEALED, Some(encryption)) => {
                let body = &record[HEADER_LEN..];
                if body.len() < KEY_ID_LEN + NONCE_LEN + AES_256_GCM.tag_len() {
                    return Err(corrupt("the encrypted record is truncated"));
                }
                let (key_id, rest) = body.split_at(KEY_ID_LEN);
                if key_id != encryption.id {
                    return Err(corrupt(&format!(
                        "the record was encrypted with key {}, not with this store's key {}{DIFFERENT_KEYS}",
                        to_hex(key_id),
                        encryption.id()
                    )));
                }
                let (nonce, sealed) = rest.split_at(NONCE_LEN);
                let nonce = Nonce::try_assume_unique_for_key(nonce)
                    .map_err(|_| corrupt("the nonce is malformed"))?;
                let aad = aad(&record[..HEADER_LEN + KEY_ID_LEN], key);
                let mut buffer = Zeroizing::new(sealed.to_vec());
                let opened = encryption
                    .aead()
                    .open_in_place(nonce, Aad::from(&aad), &mut buffer)
                    .map_err(|_| {
                        corrupt("the record does not decrypt: tampered with, or stored under another account's key")
                    })?;
                Zeroizing::new(opened.to_vec())
            }
            _ => return Err(corrupt("unknown record kind")),
        };
        Ok(plain)
    }
}

/// The authenticated data of a sealed record: its header and the key name.
fn aad(header: &[u8], key: &StoreKey) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(key.digest().as_bytes());
    aad
}

/// Exactly `N` bytes from `2 * N` hexadecimal digits.
pub(crate) fn from_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    // Digits only: `from_str_radix` alone would also take a sign ("+f").
    if hex.len() != 2 * N || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = [0u8; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Wire {
    issued_at: u64,
    access_token: Secret,
    access_expires_at: u64,
    refresh_token: Secret,
    refresh_expires_at: u64,
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn session() -> StoredSession {
        StoredSession::from_lifetimes(
            Secret::new("access-secret"),
            Duration::from_secs(1800),
            Secret::new("refresh-secret"),
            Duration::from_secs(3600),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        )
        .expect("in range")
    }

    fn key() -> StoreKey {
        StoreKey::for_account("https://api.dynata.com", "api", "alice")
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[test]
    fn a_plain_record_round_trips() {
        let codec = SessionCodec::plain();
        let record = codec.encode(&key(), &session()).expect("encodes");
        assert!(record.starts_with(b"DYNSESS1\0{"));
        assert_eq!(codec.decode(&key(), &record).expect("decodes"), session());
    }

    #[test]
    fn a_sealed_record_round_trips_and_hides_the_tokens() {
        let codec = SessionCodec::encrypted(EncryptionKey::from_bytes([7; 32]));
        let a = codec.encode(&key(), &session()).expect("encodes");
        let b = codec.encode(&key(), &session()).expect("encodes");
        assert_ne!(a, b, "a fresh nonce for every write");
        assert!(!contains(&a, "access-secret") && !contains(&a, "refresh-secret"));
        assert_eq!(codec.decode(&key(), &a).expect("decodes"), session());
    }

    #[test]
    fn a_sealed_record_refuses_tampering_another_key_and_another_name() {
        let codec = SessionCodec::encrypted(EncryptionKey::from_bytes([7; 32]));
        let record = codec.encode(&key(), &session()).expect("encodes");

        let mut tampered = record.clone();
        *tampered.last_mut().expect("non-empty") ^= 1;
        assert!(matches!(
            codec.decode(&key(), &tampered),
            Err(StoreError::Corrupt { .. })
        ));

        let other = SessionCodec::encrypted(EncryptionKey::from_bytes([8; 32]));
        let error = other.decode(&key(), &record).expect_err("another key");
        assert!(error.to_string().contains("encrypted with key"), "{error}");

        let elsewhere = StoreKey::for_account("https://api.dynata.com", "api", "bob");
        assert!(matches!(
            codec.decode(&elsewhere, &record),
            Err(StoreError::Corrupt { .. })
        ));

        assert!(matches!(
            SessionCodec::plain().decode(&key(), &record),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn garbage_and_truncation_are_corrupt_not_panics() {
        let codec = SessionCodec::plain();
        let record = codec.encode(&key(), &session()).expect("encodes");
        for len in 0..record.len() {
            let error = codec.decode(&key(), &record[..len]).expect_err("truncated");
            assert!(!error.to_string().contains("secret"), "{error}");
        }
        let sealed = SessionCodec::encrypted(EncryptionKey::from_bytes([1; 32]));
        let record = sealed.encode(&key(), &session()).expect("encodes");
        for len in 0..record.len() {
            assert!(sealed.decode(&key(), &record[..len]).is_err());
        }
        assert!(codec.decode(&key(), b"DYNSESS1\x07junk").is_err());
        assert!(
            codec
                .decode(&key(), &vec![b'x'; MAX_RECORD_BYTES + 1])
                .is_err()
        );
    }

    #[test]
    fn keys_parse_from_hex_and_never_print() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let key = EncryptionKey::from_hex(hex).expect("valid");
        let debug = format!("{key:?}");
        assert!(!debug.contains("00112233"), "{debug}");
        assert_eq!(key.id().len(), 16);
        assert!(EncryptionKey::from_hex("abc").is_err());
        assert!(EncryptionKey::from_hex(&"zz".repeat(32)).is_err());
        assert!(EncryptionKey::from_hex(&"é".repeat(32)).is_err());
        assert!(EncryptionKey::from_hex(&"+f".repeat(32)).is_err());
    }
}
