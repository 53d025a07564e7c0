//! The origin absolute URLs in answers are built on (paging links, event
//! actions, end links): the host the client called, as with Dynata, so that
//! a client configured with `http://localhost:PORT` can follow them with
//! its token. Only a loopback `Host` naming the sandbox's own port is
//! believed; anything else gets the bind address, so that a request can
//! never make the sandbox point a client at another site.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::{HeaderMap, header};

/// The base URL the sandbox listens on, such as `http://127.0.0.1:41234`
/// (no trailing slash).
pub(crate) fn bind_url(bind: SocketAddr) -> String {
    format!("http://{bind}")
}

/// The base URL (scheme, host and port, no trailing slash) of a request to
/// the sandbox bound at `bind`: `http://` and its `Host` header when that is
/// `localhost`, `127.0.0.1` or `[::1]` with the bind port, written in the
/// canonical form; else [`bind_url`]. The sandbox only serves plain http.
pub(crate) fn base_url(headers: &HeaderMap, bind: SocketAddr) -> String {
    loopback_host(headers, bind.port()).map_or_else(
        || bind_url(bind),
        |host| format!("http://{host}:{}", bind.port()),
    )
}

/// The loopback host the request's only `Host` header names with `port`.
fn loopback_host(headers: &HeaderMap, port: u16) -> Option<&'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let value = hosts.next()?.to_str().ok()?;
    if hosts.next().is_some() {
        return None;
    }
    let (host, port_text) = value.rsplit_once(':')?;
    // Digits only: `u16::from_str` would also take a sign.
    if port_text.is_empty() || !port_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if port_text.parse::<u16>().ok()? != port {
        return None;
    }
    if host.eq_ignore_ascii_case("localhost") {
        Some("localhost")
    } else if host
        .parse::<Ipv4Addr>()
        .is_ok_and(|ip| ip == Ipv4Addr::LOCALHOST)
    {
        Some("127.0.0.1")
    } else if host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .is_some_and(|ip| ip == Ipv6Addr::LOCALHOST)
    {
        Some("[::1]")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const BIND: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 41234);

    fn with_hosts(hosts: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        base_url(&headers, BIND)
    }

    #[test]
    fn a_loopback_host_with_the_bind_port_is_the_base() {
        assert_eq!(with_hosts(&["localhost:41234"]), "http://localhost:41234");
        assert_eq!(with_hosts(&["LocalHost:41234"]), "http://localhost:41234");
        assert_eq!(with_hosts(&["127.0.0.1:41234"]), "http://127.0.0.1:41234");
        assert_eq!(with_hosts(&["[::1]:41234"]), "http://[::1]:41234");
        assert_eq!(with_hosts(&["[0:0::1]:41234"]), "http://[::1]:41234");
        assert_eq!(with_hosts(&["localhost:041234"]), "http://localhost:41234");
    }

    #[test]
    fn anything_else_is_the_bind_address() {
        for hosts in [
            &[][..],
            &["evil.example:80"],
            &["evil.example:41234"],
            &["localhost"],
            &["localhost:"],
            &["localhost:80"],
            &["localhost:+41234"],
            &["localhost:141234"],
            &["127.0.0.2:41234"],
            &["::1:41234"],
            &["[::2]:41234"],
            &["user@localhost:41234"],
            &["localhost.evil.example:41234"],
            &["localhost:41234", "evil.example:41234"],
        ] {
            assert_eq!(with_hosts(hosts), "http://127.0.0.1:41234", "{hosts:?}");
        }
    }
}
