//! Who may act: a [`Gate`] decides per request, for consoles whose callers are not all alike
//! (in a cluster: a bearer token the API server authenticates, actions it authorizes). A
//! console without a gate (on a host) is either read-only for everyone or not at all.

use std::{future::Future, pin::Pin};

use axum::http::{HeaderMap, header};

/// The cookie a signed-in browser carries its token in (HttpOnly, SameSite=Strict).
pub const TOKEN_COOKIE: &str = "vigil-token";

/// An action a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Archive or unarchive the finding with this id.
    Archive {
        /// Finding id.
        finding: &'a str,
    },
    /// Create a suppression rule.
    Suppress,
    /// Add an address to the trusted list with this name (as the backend lists it).
    Trust {
        /// List name.
        list: &'a str,
    },
}

/// Why a request may not act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Who the caller is is not known (no token, or one the API server does not accept): 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known and may not do this: 403.
    #[error("{0}")]
    Forbidden(String),
    /// The decision could not be made (the API server did not answer): 503.
    #[error("{0}")]
    Unavailable(String),
}

/// A boxed future of a gate's answer.
pub type GateFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Denied>> + Send + 'a>>;

/// Decides per request whether it may act.
pub trait Gate: Send + Sync + 'static {
    /// Why this request cannot act at all (shown on every page; actions are hidden), or `None`
    /// when it may try (each action is then checked with [`Gate::check`]).
    fn read_only(&self, headers: &HeaderMap) -> Option<String>;

    /// Whether this request may carry out `action`.
    fn check<'a>(&'a self, headers: &'a HeaderMap, action: Action<'a>) -> GateFuture<'a, ()>;

    /// Who `token` belongs to (for signing in), or why it is not accepted.
    fn who<'a>(&'a self, token: &'a str) -> GateFuture<'a, String>;
}

/// The caller's bearer token: the `Authorization: Bearer` header, else the sign-in cookie.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(t);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == TOKEN_COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|t| !t.is_empty())
}

/// Whether a token is plausible as a cookie value (a JWT or an opaque token: printable ASCII
/// without separators), so a sign-in cannot inject cookie attributes.
pub fn cookie_safe(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 8192
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_token_comes_from_the_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; vigil-token=abc.def; c=d"),
        );
        assert_eq!(bearer_token(&h), Some("abc.def"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(bearer_token(&h), Some("xyz"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert_eq!(bearer_token(&h), Some("abc.def"));
        assert!(cookie_safe("eyJhbGciOi.J-_x"));
        assert!(!cookie_safe("a; Domain=evil"));
        assert!(!cookie_safe(""));
    }
}
