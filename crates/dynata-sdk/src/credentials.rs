//! Who logs in: an API account's username, password and client id.

use std::fmt;

use dynata_auth_api::Secret;

use crate::Error;

/// The client id Dynata gives API accounts.
pub const DEFAULT_CLIENT_ID: &str = "api";

/// An API account's credentials. The password is held as a [`Secret`]:
/// `Debug` shows the username and client id only.
#[derive(Clone)]
pub struct Credentials {
    pub(crate) username: String,
    /// `None`: this client may only use a session a token store holds.
    pub(crate) password: Option<Secret>,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Secret>,
}

impl Credentials {
    /// Credentials for an API account, with the client id `api`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: Some(Secret::new(password)),
            client_id: DEFAULT_CLIENT_ID.to_string(),
            client_secret: None,
        }
    }

    /// Credentials with no password, for a client that may only use the
    /// session a [`crate::ClientBuilder::token_store`] holds (a command line
    /// that logged in earlier, a worker that never sees the password). When
    /// Dynata refuses its refresh token (`invalid_grant`: the session has
    /// ended), or the store holds no live session, calls fail with
    /// [`Error::LoginRequired`]: nothing is sent to the login endpoint. Any
    /// other refusal of a refresh is returned as it came, and the session
    /// is kept.
    pub fn without_password(username: impl Into<String>) -> Self {
        Credentials {
            password: None,
            ..Credentials::new(username, "")
        }
    }

    /// Reads `DYNATA_USERNAME`, `DYNATA_PASSWORD` and the optional
    /// `DYNATA_CLIENT_ID` (default `api`). The names of Dynata's Python client,
    /// `DYNATA_DEMAND_USERNAME`, `DYNATA_DEMAND_PASSWORD` and
    /// `DYNATA_DEMAND_CLIENT_ID`, are read when the first ones are not set.
    ///
    /// A missing variable is [`Error::MissingEnvVar`], naming it.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Credentials::from_env`] over any source of variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        // An empty variable counts as unset.
        let set = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let read = |name: &str, python_name: &str| set(name).or_else(|| set(python_name));
        let username = read("DYNATA_USERNAME", "DYNATA_DEMAND_USERNAME").ok_or_else(|| {
            Error::MissingEnvVar {
                name: "DYNATA_USERNAME".into(),
            }
        })?;
        let password = read("DYNATA_PASSWORD", "DYNATA_DEMAND_PASSWORD").ok_or_else(|| {
            Error::MissingEnvVar {
                name: "DYNATA_PASSWORD".into(),
            }
        })?;
        let mut credentials = Credentials::new(username, password);
        if let Some(client_id) = read("DYNATA_CLIENT_ID", "DYNATA_DEMAND_CLIENT_ID") {
            credentials.client_id = client_id;
        }
        Ok(credentials)
    }

    /// Uses another client id than `api`.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Sends a client secret with logins and refreshes (not needed for API
    /// accounts).
    pub fn with_client_secret(mut self, client_secret: impl Into<String>) -> Self {
        self.client_secret = Some(Secret::new(client_secret));
        self
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn reads_the_sdk_variables_with_the_default_client_id() {
        let creds = Credentials::from_lookup(lookup(&[
            ("DYNATA_USERNAME", "u"),
            ("DYNATA_PASSWORD", "p"),
        ]))
        .expect("complete");
        assert_eq!(
            (
                creds.username(),
                creds.password.as_ref().map(Secret::expose_secret)
            ),
            ("u", Some("p"))
        );
        assert_eq!(creds.client_id(), "api");
    }

    #[test]
    fn reads_the_python_client_variables_too() {
        let creds = Credentials::from_lookup(lookup(&[
            ("DYNATA_DEMAND_USERNAME", "u"),
            ("DYNATA_DEMAND_PASSWORD", "p"),
            ("DYNATA_DEMAND_CLIENT_ID", "other"),
        ]))
        .expect("complete");
        assert_eq!((creds.username(), creds.client_id()), ("u", "other"));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let error =
            Credentials::from_lookup(lookup(&[("DYNATA_USERNAME", "u")])).expect_err("no password");
        assert!(
            matches!(&error, Error::MissingEnvVar { name } if name == "DYNATA_PASSWORD"),
            "{error:?}"
        );
        assert!(error.to_string().contains("DYNATA_PASSWORD"));
    }

    #[test]
    fn debug_hides_the_secrets() {
        let creds = Credentials::new("alice", "hunter2").with_client_secret("s3cr3t");
        let debug = format!("{creds:?}");
        assert!(debug.contains("alice"), "{debug}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("s3cr3t"),
            "{debug}"
        );
    }
}
