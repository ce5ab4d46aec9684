//! The request headers IdentSphere reads credentials and addresses from: `Authorization` (`bearer`),
//! `Cookie` (`cookie`), `X-Forwarded-For`, `Forwarded` and `X-Real-IP` behind trusted proxies (`client_ip`, with
//! each choice of the header it reads), `Origin` and `Sec-Fetch-Site` (`check_csrf`).
//!
//! The input is a request head as text, so the seeds are readable and any byte can land in a value:
//!
//! ```text
//! POST 10.0.0.2
//! x-fuzz-trusted: 10.0.0.0/8, ::1
//! x-fuzz-allowed: https://app.example.com
//! X-Forwarded-For: 203.0.113.7, 10.0.0.1
//! Cookie: identsphere_at=eyJ...
//! ```
//!
//! The first line is the method and the TCP peer; `x-fuzz-*` lines set the configuration (trusted proxies,
//! allowed origins); every other line is a header. Nothing may panic, refusals are `token_invalid` and
//! `csrf_rejected` only, and what is accepted keeps the rules: a bearer token is trimmed and non-empty, an
//! untrusted peer is the client whatever it forwards, the client is never one of our proxies, and an unsafe
//! request with an `Origin` passes only when that origin is ours or allowed.

#![no_main]

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::test::TestRequest;
use identsphere::config::ClientIpHeader;
use identsphere::config::PublicUrl;
use identsphere::http::client_ip::client_ip;
use identsphere::http::credentials::{ACCESS_COOKIE, REFRESH_COOKIE, bearer, check_csrf, cookie};
use identsphere_fuzz::assert_refusal;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

const OUR_ORIGIN: &str = "https://auth.example.com";

/// The request and the configuration the input describes.
struct Case {
    req: HttpRequest,
    trusted: Vec<IpNet>,
    allowed: Vec<String>,
}

/// A proxy as `IDENTSPHERE_TRUSTED_PROXIES` lists it: a network, or one address.
fn net(raw: &str) -> Option<IpNet> {
    let raw = raw.trim();
    raw.parse().ok().or_else(|| raw.parse::<IpAddr>().ok().map(IpNet::from))
}

fn case(data: &[u8]) -> Case {
    let mut lines = data.split(|&b| b == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let first = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut words = first.split(' ');
    let method = Method::from_bytes(words.next().unwrap_or_default().as_bytes()).unwrap_or(Method::POST);
    let mut req = TestRequest::default().method(method);
    if let Some(peer) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
        req = req.peer_addr(SocketAddr::new(peer, 4711));
    }
    let (mut trusted, mut allowed) = (Vec::new(), Vec::new());
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii_start());
        match name {
            b"x-fuzz-trusted" => trusted.extend(String::from_utf8_lossy(value).split(',').filter_map(net)),
            b"x-fuzz-allowed" => allowed.push(String::from_utf8_lossy(value).into_owned()),
            _ => {
                if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                    req = req.append_header((name, value));
                }
            }
        }
    }
    Case { req: req.to_http_request(), trusted, allowed }
}

fn check_bearer(req: &HttpRequest) {
    match bearer(req) {
        Ok(None) => assert!(!req.headers().contains_key(header::AUTHORIZATION)),
        Ok(Some(token)) => {
            assert!(!token.is_empty() && token == token.trim(), "{token:?}");
            let sent = req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes).unwrap_or_default();
            assert!(sent.len() > 7 && sent[..7].eq_ignore_ascii_case(b"bearer "), "{sent:?}");
        }
        Err(err) => assert_refusal(&err, &["token_invalid"]),
    }
}

fn check_client_ip(req: &HttpRequest, trusted: &[IpNet], header: ClientIpHeader) {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let client = client_ip(req, trusted, header);
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        assert_eq!(client, None, "an address without a peer");
        return;
    };
    let Some(client) = client else { panic!("no address for a request from {peer}") };
    if !is_trusted(&peer) {
        assert_eq!(client, peer, "an untrusted peer chose its address");
    } else if client != peer {
        assert!(!is_trusted(&client), "the client {client} is one of our proxies");
    }
}

fn check_origin(req: &HttpRequest, allowed: &[String]) {
    let public = PublicUrl { base: OUR_ORIGIN.to_owned(), origin: OUR_ORIGIN.to_owned(), secure_cookies: true };
    let verdict = check_csrf(req, &public, allowed);
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
    match (verdict, req.headers().get(header::ORIGIN)) {
        (Ok(()), Some(origin)) if !safe => {
            let origin = origin.to_str().map(|o| o.trim().to_ascii_lowercase()).unwrap_or_default();
            assert!(origin == OUR_ORIGIN || allowed.contains(&origin), "a foreign origin passed: {origin:?}");
        }
        (Ok(()), _) => {}
        (Err(err), _) => {
            assert!(!safe, "a {} request refused", req.method());
            assert_refusal(&err, &["csrf_rejected"]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Case { req, trusted, allowed } = case(data);
    check_bearer(&req);
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        if let Some(value) = cookie(&req, name) {
            assert!(!value.is_empty() && req.headers().contains_key(header::COOKIE), "{name}={value:?}");
        }
    }
    for header in [ClientIpHeader::XForwardedFor, ClientIpHeader::Forwarded, ClientIpHeader::XRealIp] {
        check_client_ip(&req, &trusted, header);
    }
    check_origin(&req, &allowed);
});
