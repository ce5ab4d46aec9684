//! The client's address: the TCP peer, or what a trusted proxy says it forwarded for.
//!
//! Only the one header the operator names (`IDENTSPHERE_CLIENT_IP_HEADER`: the one its proxies set) is
//! read, and only when the peer is one of `IDENTSPHERE_TRUSTED_PROXIES`. A proxy that appends to
//! `X-Forwarded-For` passes a `Forwarded` the client wrote through untouched (ingress-nginx, AWS ALB), so
//! believing any other header would let the client choose its address. The header is read from the
//! right, skipping further trusted proxies: the first untrusted address is the client. Anything a client
//! writes into it itself sits to the left of what our proxies appended, so it cannot choose the address
//! its requests are limited under. This module must not decide how addresses are grouped for limits
//! (`Service::limit` does).

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::config::ClientIpHeader;

/// The address requests from `req` are attributed to (rate limits, the session record).
#[must_use]
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet], header: ClientIpHeader) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let values = req.headers().get_all(header.name()).filter_map(|v| v.to_str().ok());
    let hops: Vec<IpAddr> = match header {
        ClientIpHeader::XForwardedFor => values.flat_map(|v| v.split(',')).filter_map(parse).collect(),
        ClientIpHeader::Forwarded => values.flat_map(|v| v.split(',')).filter_map(forwarded_for).collect(),
        ClientIpHeader::XRealIp => {
            // The proxy replaces it: more than one value means something else added one, and none is believed.
            let values: Vec<&str> = values.collect();
            match values.as_slice() {
                [one] => parse(one).into_iter().collect(),
                _ => Vec::new(),
            }
        }
    };
    Some(hops.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer))
}

/// The `for=` address of one `Forwarded` element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then(|| parse(value))?
    })
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

    fn ip_by(header: ClientIpHeader, req: TestRequest, trusted: &[&str]) -> String {
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_ip(&req.to_http_request(), &trusted, header).unwrap().to_string()
    }

    fn ip(req: TestRequest, trusted: &[&str]) -> String {
        ip_by(ClientIpHeader::XForwardedFor, req, trusted)
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
        assert_eq!(ip(from("10.0.0.2"), &["10.0.0.0/8"]), "10.0.0.2", "no header: the proxy itself");
        let garbage = from("10.0.0.2").insert_header(("X-Forwarded-For", "not-an-ip"));
        assert_eq!(ip(garbage, &["10.0.0.0/8"]), "10.0.0.2");
        let real_ip = || from("198.51.100.9").insert_header(("X-Real-IP", "1.2.3.4"));
        assert_eq!(ip_by(ClientIpHeader::XRealIp, real_ip(), &["10.0.0.0/8"]), "198.51.100.9");
    }

    #[test]
    fn only_the_configured_header_is_read() {
        // What ingress-nginx or an ALB sends on: the client's own `Forwarded`, and the `X-Forwarded-For`
        // the proxy appended to.
        let both = || {
            from("10.0.0.2")
                .insert_header(("Forwarded", r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https"#))
                .insert_header(("X-Forwarded-For", "5.5.5.5, 203.0.113.7"))
                .insert_header(("X-Real-IP", "198.51.100.4"))
        };
        let trusted = ["10.0.0.0/8"];
        assert_eq!(ip_by(ClientIpHeader::XForwardedFor, both(), &trusted), "203.0.113.7");
        assert_eq!(ip_by(ClientIpHeader::Forwarded, both(), &trusted), "2001:db8::7");
        assert_eq!(ip_by(ClientIpHeader::XRealIp, both(), &trusted), "198.51.100.4");
        let forwarded_only = from("10.0.0.2").insert_header(("Forwarded", "for=6.6.6.6"));
        assert_eq!(ip(forwarded_only, &trusted), "10.0.0.2", "a Forwarded header is not read for x-forwarded-for");
        let xff_only = from("10.0.0.2").insert_header(("X-Forwarded-For", "6.6.6.6"));
        assert_eq!(ip_by(ClientIpHeader::Forwarded, xff_only, &trusted), "10.0.0.2");
    }

    #[test]
    fn forwarded_is_read_from_the_right_past_trusted_proxies() {
        let chain =
            from("10.0.0.2").insert_header(("Forwarded", "for=6.6.6.6;proto=https, For=203.0.113.9, for=10.0.0.7"));
        assert_eq!(ip_by(ClientIpHeader::Forwarded, chain, &["10.0.0.0/8"]), "203.0.113.9");
        let unknown = from("10.0.0.2").insert_header(("Forwarded", "for=unknown"));
        assert_eq!(ip_by(ClientIpHeader::Forwarded, unknown, &["10.0.0.0/8"]), "10.0.0.2");
    }

    #[test]
    fn x_real_ip_is_believed_only_as_one_untrusted_value() {
        let real = |values: &[&str]| {
            values.iter().fold(from("10.0.0.2"), |req, value| req.append_header(("X-Real-IP", *value)))
        };
        let trusted = ["10.0.0.0/8"];
        assert_eq!(ip_by(ClientIpHeader::XRealIp, real(&["203.0.113.7"]), &trusted), "203.0.113.7");
        assert_eq!(ip_by(ClientIpHeader::XRealIp, real(&["1.2.3.4", "203.0.113.7"]), &trusted), "10.0.0.2");
        assert_eq!(ip_by(ClientIpHeader::XRealIp, real(&["1.2.3.4, 203.0.113.7"]), &trusted), "10.0.0.2");
        assert_eq!(ip_by(ClientIpHeader::XRealIp, real(&["10.9.9.9"]), &trusted), "10.0.0.2");
    }

    #[test]
    fn the_configured_names_parse_in_any_case() {
        assert_eq!(ClientIpHeader::parse("X-Forwarded-For"), Some(ClientIpHeader::XForwardedFor));
        assert_eq!(ClientIpHeader::parse("forwarded"), Some(ClientIpHeader::Forwarded));
        assert_eq!(ClientIpHeader::parse("X-REAL-IP"), Some(ClientIpHeader::XRealIp));
        assert_eq!(ClientIpHeader::parse("x-client-ip"), None);
    }
}
