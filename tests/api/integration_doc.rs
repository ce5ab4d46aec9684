//! `docs/integration.md`'s Rust snippet, compiled and run: `integration_snippet.rs` must be the page's snippet
//! word for word, and the test runs it against a server whose public base URL is its real address.

use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app_with};

#[path = "integration_snippet.rs"]
mod snippet;

#[test]
fn the_rust_snippet_is_the_page_s() {
    let page = include_str!("../../docs/integration.md");
    let start = page.find("<!-- snippet: rust-jsonwebtoken -->\n```rust\n").expect("the page's Rust snippet");
    let code = &page[start..].split_once("```rust\n").unwrap().1;
    let code = &code[..code.find("```\n").unwrap()];
    assert_eq!(code, include_str!("integration_snippet.rs"), "docs/integration.md and integration_snippet.rs differ");
}

#[actix_web::test]
async fn the_rust_snippet_accepts_an_access_token_and_refuses_a_changed_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let bind = format!("127.0.0.1:{port}");
    let app = spawn_app_with(&[("IDENTSPHERE_BIND", &bind), ("IDENTSPHERE_PUBLIC_BASE_URL", &base)]).await;
    let registered = app.register(&json!({"email": "rust@example.com", "password": PASSWORD})).await;
    let tokens: serde_json::Value = registered.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let claims = snippet::verify(&base, access).await.unwrap();
    assert_eq!(claims["sub"], tokens["user"]["id"]);

    // A changed signature, a changed payload, another issuer, and a refresh token: refused.
    let (head, rest) = access.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let flip = |text: &str| {
        let mut bytes = text.as_bytes().to_vec();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let refresh = tokens["refresh_token"].as_str().unwrap();
    for (what, token, issuer) in [
        ("a changed signature", format!("{head}.{payload}.{}", flip(signature)), base.clone()),
        ("a changed payload", format!("{head}.{}.{signature}", flip(payload)), base.clone()),
        ("another issuer", access.to_owned(), format!("http://localhost:{port}")),
        ("a refresh token", refresh.to_owned(), base.clone()),
    ] {
        assert!(snippet::verify(&issuer, &token).await.is_err(), "{what} was accepted");
    }
}
