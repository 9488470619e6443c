//! Who may use the dashboard, checked on every request before any handler runs:
//!
//! - **Listen address.** Loopback by default; a non-loopback address needs an operator-given token
//!   ([`check_listen`]), or the dashboard refuses to start ([`StartError::TokenRequired`]).
//! - **Host.** The `Host` header must be the listen address or `localhost` with the listened port (so a page of
//!   another site whose name was rebound to 127.0.0.1 is refused: DNS rebinding). On an unspecified address
//!   (`0.0.0.0`, `[::]`) any IP literal with that port is accepted too, never a name.
//! - **Token.** Every `/api/` request carries the token in `X-Watchbot-Token`: on loopback without `--token` a
//!   random per-process one that the page embeds; otherwise the operator's, which the page asks for.
//! - **Actions.** Only `POST` (routes have no `GET`), and a browser's request must come from the page itself: an
//!   `Origin` header, when sent, is this dashboard's; `Sec-Fetch-Site`, when sent, is `same-origin`.
//!
//! Every response forbids framing (`frame-ancestors 'none'`, `X-Frame-Options: DENY`) and loads nothing from
//! elsewhere (`Content-Security-Policy: default-src 'self'`).

use axum::http::{HeaderMap, Method, StatusCode, header};
use std::net::{IpAddr, SocketAddr};

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "x-watchbot-token";

/// Why the dashboard did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listen address other than loopback, without a token.
    #[error(
        "--listen {0} is not a loopback address: anyone who can reach it could act on the queue; pass --token TOKEN \
         (the page asks for it)"
    )]
    TokenRequired(SocketAddr),
    /// An empty token.
    #[error("--token must not be empty")]
    EmptyToken,
    /// The address could not be listened on.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The token to use: the operator's (which must not be empty), required off loopback.
pub fn check_listen(listen: SocketAddr, token: Option<String>) -> Result<Option<String>, StartError> {
    match token {
        Some(token) if token.is_empty() => Err(StartError::EmptyToken),
        Some(token) => Ok(Some(token)),
        None if listen.ip().is_loopback() => Ok(None),
        None => Err(StartError::TokenRequired(listen)),
    }
}

/// The access rules of one dashboard: its address and its token.
#[derive(Clone)]
pub struct Access {
    address: SocketAddr,
    token: String,
    given: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("address", &self.address).field("given", &self.given).finish_non_exhaustive()
    }
}

/// A refused request: its status and one line saying why.
pub type Refusal = (StatusCode, String);

impl Access {
    /// The rules for a dashboard listening on `address`: with the operator's token, or a random one.
    pub fn new(address: SocketAddr, token: Option<String>) -> Access {
        match token {
            Some(token) => Access { address, token, given: true },
            None => Access { address, token: random_token(), given: false },
        }
    }

    /// The address listened on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The token the page may embed: the random one (loopback without `--token`), never an operator's.
    pub fn embedded_token(&self) -> Option<&str> {
        (!self.given).then_some(self.token.as_str())
    }

    /// The token (tests send it).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether `host` (a `Host` header's value) names this dashboard.
    pub fn host_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else { return false };
        if port != self.address.port() {
            return false;
        }
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => ip == self.address.ip() || self.address.ip().is_unspecified(),
            Err(_) => false,
        }
    }

    /// Checks a request: its `Host`, and for `/api/` its token, and for an action its origin.
    pub fn check(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        if !self.host_allowed(host) {
            return Err((
                StatusCode::MISDIRECTED_REQUEST,
                format!("Host {host:?} is not this dashboard's address ({}) or localhost", self.address),
            ));
        }
        if !path.starts_with("/api/") {
            return Ok(());
        }
        let token = headers.get(TOKEN_HEADER).and_then(|t| t.to_str().ok());
        match token {
            None => return Err((StatusCode::UNAUTHORIZED, format!("the {TOKEN_HEADER} header is missing"))),
            Some(token) if !same(token.as_bytes(), self.token.as_bytes()) => {
                return Err((StatusCode::UNAUTHORIZED, "wrong token".to_string()));
            }
            Some(_) => {}
        }
        if method != Method::GET && method != Method::HEAD {
            if let Some(origin) = headers.get(header::ORIGIN) {
                let origin = origin.to_str().unwrap_or("");
                let same_origin = origin.strip_prefix("http://").is_some_and(|host| self.host_allowed(host));
                if !same_origin {
                    return Err((StatusCode::FORBIDDEN, format!("cross-origin request from {origin:?} refused")));
                }
            }
            if let Some(site) = headers.get("sec-fetch-site")
                && site.as_bytes() != b"same-origin"
            {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!("cross-site request refused (Sec-Fetch-Site: {})", site.to_str().unwrap_or("?")),
                ));
            }
        }
        Ok(())
    }
}

/// A `Host` value's name (an IPv6 literal without its brackets) and port (80 when none is given).
fn split_host(host: &str) -> Option<(&str, u16)> {
    let (name, rest) = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?,
        None if host.matches(':').count() > 1 => return None,
        None => match host.find(':') {
            Some(colon) => (&host[..colon], &host[colon..]),
            None => (host, ""),
        },
    };
    let port = match rest {
        "" => 80,
        rest => rest.strip_prefix(':')?.parse().ok()?,
    };
    (!name.is_empty()).then_some((name, port))
}

/// Compares two tokens in time that depends on their lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 128 random bits from the kernel, as hex (falls back on the clock and address-space randomness if
/// `/dev/urandom` cannot be read, which a Linux system always can).
fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let stack = &bytes as *const _ as usize as u128;
        bytes = (now ^ (stack << 64) ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(address: &str) -> Access {
        Access::new(address.parse().unwrap(), None)
    }

    #[test]
    fn hosts_are_the_listen_address_or_localhost() {
        let loopback = access("127.0.0.1:8417");
        for good in ["127.0.0.1:8417", "localhost:8417", "LOCALHOST:8417"] {
            assert!(loopback.host_allowed(good), "{good}");
        }
        for bad in ["evil.example:8417", "127.0.0.1:80", "127.0.0.2:8417", "localhost", "", "127.0.0.1:x", "::1:8417"] {
            assert!(!loopback.host_allowed(bad), "{bad}");
        }
        let v6 = access("[::1]:9000");
        assert!(v6.host_allowed("[::1]:9000") && v6.host_allowed("localhost:9000"));
        assert!(!v6.host_allowed("[::2]:9000"));
        let any = Access::new("0.0.0.0:9000".parse().unwrap(), Some("t".into()));
        assert!(any.host_allowed("192.0.2.7:9000") && !any.host_allowed("rebound.example:9000"));
    }

    #[test]
    fn a_non_loopback_address_needs_a_token() {
        let lan: SocketAddr = "0.0.0.0:8417".parse().unwrap();
        assert!(matches!(check_listen(lan, None), Err(StartError::TokenRequired(_))));
        assert!(matches!(check_listen(lan, Some(String::new())), Err(StartError::EmptyToken)));
        assert_eq!(check_listen(lan, Some("t".into())).unwrap().as_deref(), Some("t"));
        assert_eq!(check_listen("127.0.0.1:1".parse().unwrap(), None).unwrap(), None);
        assert_eq!(check_listen("[::1]:1".parse().unwrap(), None).unwrap(), None);
    }

    #[test]
    fn random_tokens_are_long_and_differ_and_only_those_are_embedded() {
        let (a, b) = (access("127.0.0.1:1"), access("127.0.0.1:1"));
        assert_eq!(a.token().len(), 32);
        assert_ne!(a.token(), b.token());
        assert_eq!(a.embedded_token(), Some(a.token()));
        assert_eq!(Access::new("127.0.0.1:1".parse().unwrap(), Some("mine".into())).embedded_token(), None);
    }
}
