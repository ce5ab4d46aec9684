//! The client's address: the TCP peer, or what a trusted proxy says it forwarded for.
//!
//! `Forwarded` (RFC 7239) or `X-Forwarded-For` is believed only when the peer is one of
//! `IDENTSPHERE_TRUSTED_PROXIES`, and then read from the right, skipping further trusted proxies: the
//! first untrusted address is the client. Anything a client writes into those headers itself sits to the
//! left of what our proxies appended, so it cannot choose the address its requests are limited under.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The address requests from `req` are attributed to (rate limits, the session record).
#[must_use]
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let headers = req.headers();
    let forwarded: Vec<IpAddr> = if let Some(value) = headers.get("forwarded").and_then(|v| v.to_str().ok()) {
        value
            .split(',')
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.trim().eq_ignore_ascii_case("for").then(|| parse(value))?
                })
            })
            .collect()
    } else {
        headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(parse)
            .collect()
    };
    Some(forwarded.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer))
}

/// One address as proxies write it: `203.0.113.7`, `"[2001:db8::1]:4711"`, `198.51.100.1:8080`.
fn parse(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim().trim_matches('"');
    if let Ok(ip) = raw.parse() {
        return Some(ip);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    raw.rsplit_once(':').and_then(|(host, _)| host.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(req: TestRequest, trusted: &[&str]) -> String {
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_ip(&req.to_http_request(), &trusted).unwrap().to_string()
    }

    fn from(peer: &str) -> TestRequest {
        TestRequest::get().peer_addr(format!("{peer}:4000").parse().unwrap())
    }

    #[test]
    fn forwarding_headers_count_only_behind_trusted_proxies() {
        let spoofed = || from("198.51.100.9").insert_header(("X-Forwarded-For", "1.2.3.4"));
        assert_eq!(ip(spoofed(), &[]), "198.51.100.9");
        assert_eq!(ip(spoofed(), &["10.0.0.0/8"]), "198.51.100.9");
        let proxied = || from("10.0.0.2").insert_header(("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.1"));
        assert_eq!(ip(proxied(), &["10.0.0.0/8"]), "203.0.113.7", "the rightmost untrusted hop");
        let forwarded =
            from("10.0.0.2").insert_header(("Forwarded", r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https"#));
        assert_eq!(ip(forwarded, &["10.0.0.0/8"]), "2001:db8::7");
        assert_eq!(ip(from("10.0.0.2"), &["10.0.0.0/8"]), "10.0.0.2", "no header: the proxy itself");
        let garbage = from("10.0.0.2").insert_header(("X-Forwarded-For", "not-an-ip"));
        assert_eq!(ip(garbage, &["10.0.0.0/8"]), "10.0.0.2");
    }
}
