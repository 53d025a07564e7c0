//! The access token handed to callers.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use dynata_auth_api::Secret;

/// An access token, valid for at least the client's hard refresh margin
/// when [`crate::Client::access_token`] returned it (or, if a renewal inside
/// the margin had just failed, still valid then).
///
/// Cheap to clone (one reference count). `Debug` is redacted; the only way to
/// read the token is [`AccessToken::secret`].
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Secret,
    expires_at: Instant,
}

impl AccessToken {
    pub(crate) fn new(secret: Secret, expires_at: Instant) -> Self {
        AccessToken {
            inner: Arc::new(Inner { secret, expires_at }),
        }
    }

    /// The token itself, for an `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        self.inner.secret.expose_secret()
    }

    pub(crate) fn secret_value(&self) -> &Secret {
        &self.inner.secret
    }

    /// When the token expires, on the client's monotonic clock: the
    /// `expiresIn` Dynata sent, counted from just before the request was sent.
    /// The system's monotonic clock stands still while the machine sleeps;
    /// the client itself counts that time too, so after a suspend it may
    /// renew a token whose `expires_at` has not come.
    pub fn expires_at(&self) -> Instant {
        self.inner.expires_at
    }

    /// Whether both handles come from the same login or refresh.
    pub fn same_as(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// `Authorization: Bearer <token>`, marked sensitive (kept out of HTTP/2
/// header compression and of `Debug`), or `None` if the token is empty or
/// has characters a header cannot carry (a control character). One rule for
/// every token the client takes, from Dynata or from a token store: such a
/// token would fail every call before sending it, and no `401` would come
/// to renew it.
pub(crate) fn bearer_header(token: &str) -> Option<reqwest::header::HeaderValue> {
    if token.is_empty() {
        return None;
    }
    let mut value = reqwest::header::HeaderValue::try_from(format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[REDACTED]")
            .field("expires_at", &self.inner.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let token = AccessToken::new(Secret::new("eyJ.secret.jwt"), Instant::now());
        let debug = format!("{token:?}");
        assert!(!debug.contains("eyJ.secret.jwt"), "{debug}");
        assert_eq!(token.secret(), "eyJ.secret.jwt");
    }

    #[test]
    fn clones_are_the_same_token_and_new_ones_are_not() {
        let now = Instant::now();
        let a = AccessToken::new(Secret::new("t"), now);
        let b = AccessToken::new(Secret::new("t"), now);
        assert!(a.same_as(&a.clone()));
        assert!(!a.same_as(&b));
    }
}
