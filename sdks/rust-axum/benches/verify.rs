//! What verifying an access token costs inside an axum app, per request: the `Authenticated`
//! extractor with and without the revocation check, against a raw RS256 verification of the same
//! token with `jsonwebtoken`, on the same machine.
//!
//! `cargo bench -p identsphere-axum --bench verify` (starts a real IdentSphere in this process; the
//! revocation list holds the entries of 50 logouts). Prints p50 and p99 of each, in microseconds.

// A benchmark fails by panicking, like a test: unwrap is how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use identsphere_axum::{Authenticated, IdentSphere};
use tower::ServiceExt as _;

#[allow(dead_code, reason = "the tests' helpers: the bench uses a few")]
#[path = "../../../tests/api/authenticator.rs"]
mod authenticator;
#[allow(dead_code, reason = "the tests' helpers: the bench uses a few")]
#[path = "../tests/it/helpers.rs"]
mod helpers;

const ROUNDS: usize = 20_000;

/// p50 and p99 of `f`, in microseconds, after a warm-up.
async fn measure<F: AsyncFnMut()>(mut f: F) -> (f64, f64) {
    for _ in 0..ROUNDS / 10 {
        f().await;
    }
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        f().await;
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

fn router(auth: &IdentSphere) -> Router {
    async fn protected(Authenticated(claims): Authenticated) -> String {
        claims.sub.to_string()
    }
    async fn open() -> &'static str {
        "open"
    }
    Router::new().route("/protected", get(protected)).route("/open", get(open)).layer(auth.layer())
}

async fn through(router: &Router, path: &str, token: &str) {
    let request = Request::get(path).header("Authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert!(response.status().is_success());
    black_box(response);
}

fn main() {
    actix_web::rt::System::new().block_on(run());
}

async fn run() {
    let server = helpers::spawn_server().await;
    for _ in 0..50 {
        server.logout(&helpers::access(&server.sign_up().await)).await;
    }
    let token = helpers::access(&server.sign_up().await);
    let with_feed = server.builder().revocation_poll_interval(Duration::from_secs(5)).build().await.unwrap();
    let without_feed = IdentSphere::builder(&server.address).build().await.unwrap();
    let entries = with_feed.revocation_feed().unwrap().entries;

    // The raw baseline: jsonwebtoken with the JWKS key, the same validation, nothing else.
    let jwks: jsonwebtoken::jwk::JwkSet =
        server.http.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[&server.address]);
    let raw = measure(async || {
        black_box(jsonwebtoken::decode::<identsphere_axum::Claims>(&token, &key, &validation).unwrap());
    })
    .await;
    let verify_plain = measure(async || {
        black_box(without_feed.verify(&token).await.unwrap());
    })
    .await;
    let verify_feed = measure(async || {
        black_box(with_feed.verify(&token).await.unwrap());
    })
    .await;
    let (plain_app, feed_app) = (router(&without_feed), router(&with_feed));
    let open = measure(async || through(&plain_app, "/open", &token).await).await;
    let protected_plain = measure(async || through(&plain_app, "/protected", &token).await).await;
    let protected_feed = measure(async || through(&feed_app, "/protected", &token).await).await;

    println!("per request, {ROUNDS} rounds, µs (p50 / p99); revocation list: {entries} entries");
    let row = |name: &str, (p50, p99): (f64, f64)| println!("{name:<58} {p50:>8.1} / {p99:>8.1}");
    row("raw RS256 verify (jsonwebtoken decode)", raw);
    row("IdentSphere::verify, no revocation check", verify_plain);
    row("IdentSphere::verify, with revocation check", verify_feed);
    row("axum route without extractor (baseline)", open);
    row("axum route with Authenticated, no revocation check", protected_plain);
    row("axum route with Authenticated, with revocation check", protected_feed);
    println!(
        "extractor cost inside axum (p50 minus baseline): {:.1} µs without, {:.1} µs with the revocation check",
        protected_plain.0 - open.0,
        protected_feed.0 - open.0
    );
}
