//! The front door, run before routing for every dialect and every path:
//!
//! 1. `Host` must name an allowed host (`[api] allowed_hosts`, any port):
//!    a DNS-rebinding page reaches us under its own name and is refused.
//! 2. A browser request from another page is refused: an `Origin` not in
//!    `[api] allowed_origins` (nor our own origin), or, without an `Origin`,
//!    `Sec-Fetch-Site: cross-site|same-site`. Programs that are not browsers
//!    send neither header and pass.
//! 3. CORS preflights from allowed origins are answered here (with
//!    `Access-Control-Allow-Private-Network: true`, which Chrome asks of a
//!    public page calling a loopback address).
//! 4. With `[[api.tokens]]` configured and the dialect's `auth = "token"`, a
//!    request needs `Authorization: Bearer <token>` (401 otherwise). The
//!    token is hashed and compared in constant time against every configured
//!    hash; the caller's role goes into the request for [`require_operator`].
//!
//! The pure decisions ([`check_host`], [`check_origin`], [`authenticate`])
//! are unit-tested without HTTP.

use super::AppState;
use super::dialect;
use super::error::ApiError;
use crate::config::{ApiSettings, AuthMode, Role, TokenHash};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Who is calling, as the front door established it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No token is asked for (none configured, or the dialect's auth is "none").
    Open,
    /// A valid token; `name` is its label from the config, never the token.
    Token { role: Role, name: String },
}

impl Caller {
    pub fn may(&self, needed: Role) -> bool {
        match self {
            Caller::Open => true,
            Caller::Token { role, .. } => role.covers(needed),
        }
    }
}

/// The host part of a `Host` header (`[::1]:8730` → `[::1]`), lower-cased.
pub fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.to_ascii_lowercase()
}

/// Step 1: is `host` (a `Host` header value) allowed?
pub fn check_host(api: &ApiSettings, host: Option<&str>) -> Result<(), ApiError> {
    let Some(host) = host else {
        return Err(ApiError::forbidden(
            "host_not_allowed",
            "the request has no Host header",
        ));
    };
    let name = host_name(host);
    if api.allowed_hosts.contains(&name) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "host_not_allowed",
            format!(
                "Host {name:?} is not one of api.allowed_hosts ({}); call the API by one of those names",
                api.allowed_hosts.join(", ")
            ),
        ))
    }
}

/// Step 2: may a request with these headers, sent to `host`, go on? Returns
/// the origin to answer CORS for, when it is a cross-origin allowed one.
pub fn check_origin(
    api: &ApiSettings,
    host: &str,
    origin: Option<&str>,
    fetch_site: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match origin {
        Some(origin) => {
            let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            let own = [
                format!("http://{}", host.to_ascii_lowercase()),
                format!("https://{}", host.to_ascii_lowercase()),
            ];
            if own.contains(&o) {
                Ok(None)
            } else if api.allowed_origins.contains(&o) {
                Ok(Some(o))
            } else {
                Err(ApiError::forbidden(
                    "origin_not_allowed",
                    format!(
                        "a page from {o:?} may not call this API; add it to api.allowed_origins if it is your POS"
                    ),
                ))
            }
        }
        None => match fetch_site.map(str::trim) {
            Some(site)
                if site.eq_ignore_ascii_case("cross-site")
                    || site.eq_ignore_ascii_case("same-site") =>
            {
                Err(ApiError::forbidden(
                    "cross_site_request",
                    "a request from another site's page is refused (Sec-Fetch-Site); a browser-based POS needs its origin in api.allowed_origins",
                ))
            }
            _ => Ok(None),
        },
    }
}

/// `http://host:port/page?x` → `http://host:port`.
pub fn referer_origin(referer: &str) -> Option<String> {
    let (scheme, rest) = referer.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// Step 4: who is calling, given the `Authorization` header.
pub fn authenticate(
    api: &ApiSettings,
    mode: AuthMode,
    authorization: Option<&str>,
) -> Result<Caller, ApiError> {
    if api.tokens.is_empty() || mode == AuthMode::None {
        return Ok(Caller::Open);
    }
    let unauthorized =
        |code, message: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, message.to_string());
    let Some(value) = authorization else {
        return Err(unauthorized(
            "token_required",
            "send a token: Authorization: Bearer <token>",
        ));
    };
    let token = value
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| value.trim().strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or("");
    if token.is_empty() {
        return Err(unauthorized(
            "token_required",
            "send the token as Authorization: Bearer <token>",
        ));
    }
    let presented = TokenHash::of(token);
    // Every configured hash is compared, in constant time, whatever matches.
    let mut found: Option<&crate::config::ApiToken> = None;
    for t in &api.tokens {
        let equal: bool = t.hash.0.ct_eq(&presented.0).into();
        if equal && found.is_none_or(|f| t.role > f.role) {
            found = Some(t);
        }
    }
    match found {
        Some(t) => Ok(Caller::Token {
            role: t.role,
            name: t.name.clone(),
        }),
        None => Err(unauthorized(
            "token_invalid",
            "the token is not one of api.tokens",
        )),
    }
}

fn header(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What the front door needs: the policy, and the dialects (for their auth).
#[derive(Clone)]
pub struct Front {
    pub app: Arc<AppState>,
    pub dialects: dialect::Dialects,
}

/// The front door as a middleware (outside the router: runs for every path).
pub async fn enforce(
    State(Front { app, dialects }): State<Front>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = header(headers, header::HOST)
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    if let Err(e) = check_host(&app.api, host.as_deref()) {
        tracing::warn!(host = ?host, path = request.uri().path(), "refused: host not allowed");
        return e.into_response();
    }
    let host = host.unwrap_or_default();
    // Browsers too old to send fetch metadata still send a Referer with
    // most cross-site requests: its origin stands in for a missing Origin.
    let fetch_site = header(headers, "sec-fetch-site");
    let referer = match (header(headers, header::ORIGIN), fetch_site) {
        (None, None) => header(headers, header::REFERER).and_then(referer_origin),
        _ => None,
    };
    let cors = match check_origin(
        &app.api,
        &host,
        header(headers, header::ORIGIN).or(referer.as_deref()),
        fetch_site,
    ) {
        Ok(cors) => cors,
        Err(e) => {
            tracing::warn!(
                origin = ?header(headers, header::ORIGIN),
                site = ?header(headers, "sec-fetch-site"),
                method = %request.method(),
                path = request.uri().path(),
                "refused: cross-site request"
            );
            return e.into_response();
        }
    };
    if request.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(cors.as_deref(), headers);
    }
    let d = dialects.for_path(request.uri().path());
    // The status page signs in an operator itself (a browser sends no bearer
    // token); see api::page.
    let mode = if super::page::is_page_path(request.uri().path()) {
        AuthMode::None
    } else {
        app.api.auth.for_source(d.source)
    };
    let caller = match authenticate(&app.api, mode, header(headers, header::AUTHORIZATION)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(
                path = request.uri().path(),
                code = e.code,
                "refused: no valid token"
            );
            let mut response = e.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"fiscald\""),
            );
            allow_origin(&mut response, cors.as_deref());
            return response;
        }
    };
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    allow_origin(&mut response, cors.as_deref());
    response
}

fn allow_origin(response: &mut Response, origin: Option<&str>) {
    let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("location"),
    );
    h.append(header::VARY, HeaderValue::from_static("origin"));
}

/// Answer a CORS preflight. Only an allowed cross-origin page gets here with
/// `origin` set; a same-origin preflight needs no CORS grant.
fn preflight(origin: Option<&str>, headers: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(o) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, authorization, idempotency-key"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        if headers.contains_key("access-control-request-private-network") {
            h.insert(
                "access-control-allow-private-network",
                HeaderValue::from_static("true"),
            );
        }
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
    response
}

/// A route layer for operator endpoints: a `pos` token gets 403.
pub async fn require_operator(request: Request, next: Next) -> Response {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Open);
    if caller.may(Role::Operator) {
        if let Caller::Token { name, .. } = &caller {
            tracing::info!(token = %name, path = request.uri().path(), "operator action");
        }
        return next.run(request).await;
    }
    ApiError::forbidden(
        "operator_only",
        "this endpoint needs an operator token; a pos token may only create and read receipts",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiToken;

    fn api() -> ApiSettings {
        ApiSettings {
            allowed_origins: vec!["http://localhost:3000".into()],
            ..ApiSettings::default()
        }
    }

    #[test]
    fn hosts_are_matched_by_name_on_any_port() {
        let a = api();
        for ok in [
            "127.0.0.1:8730",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8730",
            "[::1]",
        ] {
            assert!(check_host(&a, Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example:8730",
            "evil.example",
            "127.0.0.1.evil.example",
            "[::2]:8730",
            "0.0.0.0:8730",
        ] {
            let e = check_host(&a, Some(bad)).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::FORBIDDEN, "host_not_allowed"),
                "{bad}"
            );
        }
        assert!(check_host(&a, None).is_err());
    }

    #[test]
    fn origins_and_fetch_metadata() {
        let a = api();
        let h = "127.0.0.1:8730";
        // Not a browser.
        assert_eq!(check_origin(&a, h, None, None).unwrap(), None);
        // Typed into the address bar, or a page of our own.
        assert_eq!(check_origin(&a, h, None, Some("none")).unwrap(), None);
        assert_eq!(
            check_origin(&a, h, None, Some("same-origin")).unwrap(),
            None
        );
        assert_eq!(
            check_origin(&a, h, Some("http://127.0.0.1:8730"), Some("same-origin")).unwrap(),
            None
        );
        // The configured POS page.
        assert_eq!(
            check_origin(&a, h, Some("http://localhost:3000"), Some("cross-site")).unwrap(),
            Some("http://localhost:3000".into())
        );
        for (origin, site) in [
            (Some("http://evil.example"), None),
            (Some("null"), Some("cross-site")),
            (Some("http://localhost:3001"), Some("same-site")),
            (None, Some("cross-site")),
            (None, Some("same-site")),
        ] {
            let e = check_origin(&a, h, origin, site).unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{origin:?} {site:?}");
        }
    }

    #[test]
    fn a_referer_gives_the_origin_old_browsers_leave_out() {
        assert_eq!(
            referer_origin("http://evil.example/page.html?x=1").as_deref(),
            Some("http://evil.example")
        );
        assert_eq!(
            referer_origin("http://127.0.0.1:8730").as_deref(),
            Some("http://127.0.0.1:8730")
        );
        assert_eq!(referer_origin("nonsense"), None);
    }

    #[test]
    fn tokens_are_checked_by_hash_and_role() {
        let mut a = api();
        assert_eq!(
            authenticate(&a, AuthMode::Token, None).unwrap(),
            Caller::Open
        );
        a.tokens = vec![
            ApiToken {
                name: "till".into(),
                role: Role::Pos,
                hash: TokenHash::of("pos-1"),
            },
            ApiToken {
                name: "boss".into(),
                role: Role::Operator,
                hash: TokenHash::of("op-1"),
            },
        ];
        let e = authenticate(&a, AuthMode::Token, None).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNAUTHORIZED, "token_required")
        );
        let e = authenticate(&a, AuthMode::Token, Some("Bearer nope")).unwrap_err();
        assert_eq!(e.code, "token_invalid");
        assert!(!e.message.contains("nope"));
        let pos = authenticate(&a, AuthMode::Token, Some("Bearer pos-1")).unwrap();
        assert!(pos.may(Role::Pos) && !pos.may(Role::Operator));
        let op = authenticate(&a, AuthMode::Token, Some("Bearer op-1")).unwrap();
        assert!(op.may(Role::Pos) && op.may(Role::Operator));
        // A dialect with auth = "none" asks for nothing.
        assert_eq!(
            authenticate(&a, AuthMode::None, None).unwrap(),
            Caller::Open
        );
    }
}
