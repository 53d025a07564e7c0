//! Where Dynata's API lives: production, UAT, or a URL of your own.

use std::fmt;

use reqwest::Url;

use crate::Error;

/// Which Dynata deployment to talk to.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Environment {
    /// `https://api.dynata.com`.
    Production,
    /// `https://api.uat.pe.dynata.com`, the test environment customers get
    /// from their account manager.
    Uat,
    /// Any other base URL, such as a local `dynata-sandbox`. It must be
    /// `https`, or plain `http` on a loopback address.
    Custom(Url),
}

impl Environment {
    /// Reads `DYNATA_BASE_URL` (or the Python client's `DYNATA_DEMAND_BASE_URL`)
    /// as a [`Environment::Custom`] URL; [`Error::MissingEnvVar`] if neither is
    /// set (an empty variable counts as unset), and [`Error::Config`] if the
    /// URL is invalid or insecure: an environment that was asked for is never
    /// silently replaced by another.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Environment::from_env`], with `default` when neither variable is
    /// set. A set but invalid URL is still an error.
    pub fn from_env_or(default: Environment) -> Result<Self, Error> {
        match Self::from_env() {
            Err(Error::MissingEnvVar { .. }) => Ok(default),
            other => other,
        }
    }

    /// [`Environment::from_env`] over any source of variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let url = set("DYNATA_BASE_URL")
            .or_else(|| set("DYNATA_DEMAND_BASE_URL"))
            .ok_or_else(|| Error::MissingEnvVar {
                name: "DYNATA_BASE_URL".into(),
            })?;
        Environment::custom(url.trim())
    }

    /// Parses and checks a custom base URL.
    pub fn custom(url: &str) -> Result<Self, Error> {
        // Not quoted back: what failed to parse may hold a password.
        let url = Url::parse(url)
            .map_err(|e| Error::config(format!("the base URL is not a URL: {e}")))?;
        let environment = Environment::Custom(url);
        environment.base_url()?;
        Ok(environment)
    }

    /// The base URL, checked: `https`, or `http` only on a loopback host, with
    /// no query, fragment or credentials. Returned without a trailing slash.
    pub fn base_url(&self) -> Result<String, Error> {
        let url = match self {
            Environment::Production => return Ok("https://api.dynata.com".into()),
            Environment::Uat => return Ok("https://api.uat.pe.dynata.com".into()),
            Environment::Custom(url) => url,
        };
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(url) => {}
            "http" => {
                return Err(Error::config(format!(
                    "refusing plain http to {}: tokens would cross the network unencrypted; \
                     use https (plain http is allowed on loopback addresses only)",
                    url.host_str().unwrap_or_default()
                )));
            }
            other => return Err(Error::config(format!("unsupported URL scheme {other:?}"))),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config("the base URL has no host"));
        }
        let credentials = !url.username().is_empty() || url.password().is_some();
        if url.query().is_some() || url.fragment().is_some() || credentials {
            return Err(Error::config(
                "the base URL must not carry a query, a fragment or credentials",
            ));
        }
        Ok(url.as_str().trim_end_matches('/').to_string())
    }
}

/// A custom URL is shown without a password: one built by hand (not
/// through [`Environment::custom`], which refuses it) may still hold one,
/// and a builder is `Debug` before `build()` refuses it.
impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Environment::Production => f.write_str("Production"),
            Environment::Uat => f.write_str("Uat"),
            Environment::Custom(url) => {
                let mut shown = url.clone();
                if shown.password().is_some() {
                    let _ = shown.set_password(Some("[REDACTED]"));
                }
                f.debug_tuple("Custom").field(&shown.as_str()).finish()
            }
        }
    }
}

/// A host on this machine: `http` is allowed there, and no proxy is used.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_environments_have_their_published_hosts() {
        assert_eq!(
            Environment::Production.base_url().ok().as_deref(),
            Some("https://api.dynata.com")
        );
        assert_eq!(
            Environment::Uat.base_url().ok().as_deref(),
            Some("https://api.uat.pe.dynata.com")
        );
    }

    #[test]
    fn plain_http_is_refused_unless_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1/",
            "http://[::1]:9",
            "https://x.example",
        ] {
            assert!(Environment::custom(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.dynata.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "not a url",
        ] {
            assert!(
                matches!(Environment::custom(bad), Err(Error::Config { .. })),
                "{bad}"
            );
        }
    }

    /// Userinfo in the base URL would show in `Debug` output and become a
    /// `Basic` header on every request; none is accepted, and none is
    /// quoted back in the error.
    #[test]
    fn a_base_url_with_credentials_is_refused_without_quoting_them() {
        for bad in [
            "https://:hunter2@api.example.com",
            "https://alice:hunter2@api.example.com",
            "https://alice@api.example.com",
            "https://alice:hunter2@api example.com",
        ] {
            let error = Environment::custom(bad).expect_err(bad);
            assert!(matches!(error, Error::Config { .. }), "{bad}: {error:?}");
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("hunter2"), "{bad}: {shown}");
        }
    }

    /// `Environment::Custom` is public: a URL with a password built by hand
    /// does not show it in `Debug` (a builder's, before `build()`).
    #[test]
    fn a_hand_built_custom_url_shows_no_password() {
        let url = Url::parse("https://alice:hunter2@api.example.com").expect("a URL");
        let shown = format!("{:?}", Environment::Custom(url));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("api.example.com"), "{shown}");
        assert_eq!(format!("{:?}", Environment::Uat), "Uat");
    }

    #[test]
    fn the_base_url_has_no_trailing_slash() {
        let env = Environment::custom("http://127.0.0.1:8080/").expect("valid");
        assert_eq!(
            env.base_url().ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }

    #[test]
    fn from_env_names_the_missing_variable() {
        let error = Environment::from_lookup(|_| None).expect_err("unset");
        assert!(matches!(&error, Error::MissingEnvVar { name } if name == "DYNATA_BASE_URL"));
        let empty = Environment::from_lookup(|_| Some(" ".into())).expect_err("empty");
        assert!(
            matches!(empty, Error::MissingEnvVar { .. }),
            "empty counts as unset"
        );
    }

    #[test]
    fn an_invalid_url_that_was_asked_for_is_an_error_not_production() {
        for bad in [
            "http://api.uat.pe.dynata.com",
            "htps://typo.example",
            "not a url",
        ] {
            let error = Environment::from_lookup(|name| {
                (name == "DYNATA_BASE_URL").then(|| bad.to_string())
            })
            .expect_err(bad);
            assert!(matches!(error, Error::Config { .. }), "{bad}: {error:?}");
        }
    }
}
