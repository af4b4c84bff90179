//! The origin the console is served from and the WebAuthn RP id that goes with it.
//!
//! With `--public-url https://research.example.org` (env `ATTUNE_PUBLIC_URL`) they are
//! `https://research.example.org` and `research.example.org`. Without it only a local console
//! works: the origin is `http://` plus the request's `Host` header, accepted only when that is
//! `localhost[:PORT]` or `127.0.0.1[:PORT]`, and the RP id is `localhost` or `127.0.0.1`.
//! (WebAuthn wants a domain as RP id, so browsers refuse passkeys on `127.0.0.1`: use
//! `http://localhost:PORT`.)

use axum::http::{HeaderMap, header};

use crate::AppState;
use crate::error::AppError;

/// An origin (`scheme://host[:port]`, as browsers send it in `Origin`) and its RP id (host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicOrigin {
    /// e.g. `https://research.example.org` or `http://localhost:8080`.
    pub origin: String,
    /// e.g. `research.example.org` or `localhost`.
    pub rp_id: String,
}

impl PublicOrigin {
    /// The origin of a public URL such as `https://research.example.org/` (a path is
    /// ignored; a default port is dropped, as browsers do).
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} is not a URL such as https://research.example.org"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => "443",
            "http" => "80",
            _ => return Err(format!("{url:?} must start with https:// (or http://)")),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains(['@', '[']) || authority.is_empty() {
            return Err(format!(
                "{url:?} must name a host (no user, no IPv6 address literal)"
            ));
        }
        let authority = authority.to_ascii_lowercase();
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => (host, Some(port)),
            Some(_) => return Err(format!("{url:?} has a bad port")),
            None => (authority.as_str(), None),
        };
        let valid_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid_host {
            return Err(format!("{url:?} has a bad host name"));
        }
        let origin = match port {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        };
        Ok(PublicOrigin {
            origin,
            rp_id: host.to_owned(),
        })
    }

    /// A local console on plain HTTP (`http://localhost...`, `http://127.0.0.1...`): no
    /// `Secure` cookie, as browsers would drop it there.
    pub fn is_local_http(&self) -> bool {
        self.origin.starts_with("http://") && is_local_host(&self.rp_id)
    }
}

fn is_local_host(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1"
}

/// The origin and RP id the console must be using for this request.
pub fn expected(state: &AppState, headers: &HeaderMap) -> Result<PublicOrigin, AppError> {
    if let Some(public) = &state.public_origin {
        return Ok(public.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(str::to_ascii_lowercase)
        .ok_or(AppError::CrossSiteRefused)?;
    let (name, port) = match host.split_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => (name, Some(port)),
        Some(_) => return Err(AppError::CrossSiteRefused),
        None => (host.as_str(), None),
    };
    if !is_local_host(name) {
        return Err(AppError::CrossSiteRefused);
    }
    Ok(PublicOrigin {
        origin: match port {
            Some(port) => format!("http://{name}:{port}"),
            None => format!("http://{name}"),
        },
        rp_id: name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::PublicOrigin;

    #[test]
    fn a_public_url_gives_the_origin_browsers_send_and_its_rp_id() {
        let origin = PublicOrigin::parse("https://Research.Example.org/console/").unwrap();
        assert_eq!(origin.origin, "https://research.example.org");
        assert_eq!(origin.rp_id, "research.example.org");
        assert!(!origin.is_local_http());
        let origin = PublicOrigin::parse("https://example.org:443").unwrap();
        assert_eq!(origin.origin, "https://example.org");
        let origin = PublicOrigin::parse("http://localhost:8080").unwrap();
        assert_eq!(origin.origin, "http://localhost:8080");
        assert!(origin.is_local_http());
        for bad in [
            "example.org",
            "ftp://example.org",
            "https://",
            "https://u@example.org",
            "https://example.org:x",
            "https://[::1]",
        ] {
            assert!(PublicOrigin::parse(bad).is_err(), "{bad}");
        }
    }
}
