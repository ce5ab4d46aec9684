//! An axum app whose routes are protected by IdentSphere, one per extractor.
//!
//! ```sh
//! IDENTSPHERE_URL=http://127.0.0.1:8080 IDENTSPHERE_PLATFORM_API_KEY=… \
//!   cargo run -p identsphere-axum --example protected
//! curl -H "Authorization: Bearer $ACCESS" http://127.0.0.1:3000/me
//! ```

use axum::Router;
use axum::routing::{get, post};
use identsphere_axum::{Authenticated, IdentSphere, MaybeAuthenticated, OnlineAuthenticated, RequireAal2, RequireOrg};

/// Any signed-in user.
async fn me(Authenticated(claims): Authenticated) -> String {
    format!("user {} ({})\n", claims.sub, claims.email.as_deref().unwrap_or("no email"))
}

/// Everyone; signed-in users get a personal greeting.
async fn home(MaybeAuthenticated(claims): MaybeAuthenticated) -> String {
    claims.map_or_else(|| "hello, stranger\n".to_owned(), |c| format!("hello, {}\n", c.sub))
}

/// Members of the organization in the path only.
async fn projects(RequireOrg(claims): RequireOrg) -> String {
    format!("projects of organization {:?}\n", claims.org)
}

/// Sessions with a second factor only.
async fn security(RequireAal2(claims): RequireAal2) -> String {
    format!("security settings of {}\n", claims.sub)
}

/// Must be exact: IdentSphere confirms the session is still live.
async fn transfer(online: OnlineAuthenticated) -> String {
    format!("transfer by {} as {}\n", online.session.user.email, online.session.organization.role)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("IDENTSPHERE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let mut builder = IdentSphere::builder(base);
    if let Ok(key) = std::env::var("IDENTSPHERE_PLATFORM_API_KEY") {
        builder = builder.platform_api_key(key);
    }
    let auth = builder.build().await?;
    let app = Router::new()
        .route("/", get(home))
        .route("/me", get(me))
        .route("/orgs/{org_id}/projects", get(projects))
        .route("/security", get(security))
        .route("/transfer", post(transfer))
        .layer(auth.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
