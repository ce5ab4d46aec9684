//! `docs/api.md` against the code: its endpoint table is the routing table, its error catalog is `ApiError`,
//! and its configuration table names exactly the variables the server reads. A mismatch fails;
//! `IDENTSPHERE_BLESS_DOCS=1` rewrites the generated tables instead.

use std::collections::BTreeSet;
use std::path::Path;

use identsphere::error::ApiError;
use identsphere::routes::route_table;
use serde_json::Value;

use crate::helpers::spawn_app;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md");

/// The text between `<!-- generated: NAME -->` and `<!-- end: NAME -->`.
fn section<'a>(doc: &'a str, name: &str) -> (usize, usize, &'a str) {
    let begin = format!("<!-- generated: {name} -->\n");
    let start = doc.find(&begin).unwrap_or_else(|| panic!("docs/api.md has no {begin}")) + begin.len();
    let end = start + doc[start..].find(&format!("<!-- end: {name} -->")).expect("an end marker");
    (start, end, &doc[start..end])
}

fn endpoints(openapi: &Value) -> String {
    let mut table = String::from("| Method | Path | What it does |\n|---|---|---|\n");
    for endpoint in route_table() {
        let summary = openapi["paths"][endpoint.path][endpoint.method.to_ascii_lowercase()]["summary"]
            .as_str()
            .unwrap_or_else(|| panic!("{} {} has no summary", endpoint.method, endpoint.path));
        table.push_str(&format!("| `{}` | `{}` | {summary} |\n", endpoint.method, endpoint.path));
    }
    table
}

fn errors() -> String {
    let mut table = String::from("| Code | HTTP | Type | Message |\n|---|---|---|---|\n");
    for error in ApiError::every_kind() {
        let (code, status, kind) = error.catalog();
        let message = match &error {
            // Their message is the particular problem; the catalog gives the kind.
            ApiError::InvalidRequest { .. } => "what is wrong, naming the field (`param`)".to_owned(),
            ApiError::InvalidEmail(_) | ApiError::WeakPassword { .. } => "which rule the value fails".to_owned(),
            ApiError::MethodNotAllowed { .. } => "the route's methods are in `Allow`".to_owned(),
            ApiError::PayloadTooLarge { .. } => "the limit".to_owned(),
            ApiError::RateLimited { .. } => "when to retry (`Retry-After`)".to_owned(),
            ApiError::ServiceUnavailable(_) | ApiError::Internal(_) => {
                "a fixed sentence; the cause is in the server log under the request id".to_owned()
            }
            other => other.to_string(),
        };
        table.push_str(&format!("| `{code}` | {} | `{kind}` | {message} |\n", status.as_u16()));
    }
    table
}

/// The `IDENTSPHERE_*` names in the non-test code of `src/`; `<NAME>` families by their prefix.
fn variables_read() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap();
                for piece in code.split('"').skip(1).step_by(2) {
                    if piece.starts_with("IDENTSPHERE_")
                        && piece.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
                    {
                        found.insert(piece.to_owned());
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
    found
}

fn variables_documented(doc: &str) -> BTreeSet<String> {
    let (_, config) = doc.split_once("\n## Configuration\n").expect("a Configuration section");
    config
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .flat_map(|row| row.split(" |").next().unwrap().split(", ").map(|name| name.trim_matches('`').to_owned()))
        .filter(|name| name.starts_with("IDENTSPHERE_"))
        .map(|name| name.split("<NAME>").next().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn the_reference_is_the_code() {
    let app = spawn_app().await;
    let openapi: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut doc = std::fs::read_to_string(DOC).unwrap();
    let bless = std::env::var_os("IDENTSPHERE_BLESS_DOCS").is_some();
    for (name, generated) in [("endpoints", endpoints(&openapi)), ("errors", errors())] {
        let (start, end, written) = section(&doc, name);
        if written != generated {
            assert!(
                bless,
                "docs/api.md's {name} table is not the code's: run IDENTSPHERE_BLESS_DOCS=1 cargo test --test api docs::"
            );
            doc.replace_range(start..end, &generated);
        }
    }
    if bless {
        std::fs::write(DOC, &doc).unwrap();
    }
    // `IDENTSPHERE_OAUTH_` is the prefix of the `<NAME>` family; the `_CLIENT_ID`-style suffixes it joins are
    // in the same row.
    let read: BTreeSet<String> = variables_read()
        .into_iter()
        .filter(|v| !v.starts_with("IDENTSPHERE_OAUTH_") || v == "IDENTSPHERE_OAUTH_")
        .collect();
    let documented = variables_documented(&doc);
    let undocumented: Vec<_> = read.difference(&documented).collect();
    let unread: Vec<_> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty() && unread.is_empty(),
        "read but not in docs/api.md: {undocumented:?}; in docs/api.md but read nowhere: {unread:?}"
    );
}

/// `GET /docs` serves the interactive reference from the binary alone: the page, then every script and style it
/// names, with their content types, on this origin; the script loads this server's `/openapi.json`.
#[actix_web::test]
async fn the_interactive_reference_is_served_with_everything_it_loads() {
    let app = spawn_app().await;
    let page = app.get("/docs").await;
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let html = page.text().await.unwrap();
    let assets: Vec<&str> = html.split(['"', '\'']).filter(|piece| piece.starts_with("/docs/")).collect();
    assert_eq!(assets.len(), 3, "{html}");
    for asset in assets {
        let response = app.get(asset).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{asset}");
        let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = if asset.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(kind.starts_with(expected), "{asset}: {kind}");
        let body = response.text().await.unwrap();
        if asset.ends_with("init.js") {
            assert!(body.contains("\"/openapi.json\""), "{body}");
        } else {
            assert!(body.len() > 10_000, "{asset} is {} bytes", body.len());
        }
    }
    let unknown = app.get("/docs/../Cargo.toml").await;
    assert_eq!(unknown.status(), reqwest::StatusCode::NOT_FOUND);
    crate::helpers::assert_error(app.get("/docs/secrets.js").await, 404, "not_found", "invalid_request_error").await;
}
