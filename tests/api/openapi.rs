//! `GET /openapi.json`: an OpenAPI 3.1 description of every route the server routes, every method and
//! every error code, checked against the routing table itself (`identsphere::routes::route_table()`),
//! not a list written here.

use std::collections::{BTreeMap, BTreeSet};

use identsphere::error::ApiError;
use identsphere::routes::route_table;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

async fn fetch_document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    response.json().await.unwrap()
}

/// `(path, METHOD)` of every operation the document describes.
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((path.clone(), method.to_ascii_uppercase()));
        }
    }
    operations
}

/// The catalog: code → (status, type).
fn catalog() -> BTreeMap<&'static str, (u16, &'static str)> {
    ApiError::every_kind()
        .iter()
        .map(|error| {
            let (code, status, kind) = error.catalog();
            (code, (status.as_u16(), kind))
        })
        .collect()
}

fn strings(value: &Value) -> BTreeSet<&str> {
    value.as_array().unwrap_or_else(|| panic!("not a list: {value}")).iter().map(|v| v.as_str().unwrap()).collect()
}

#[actix_web::test]
async fn openapi_document_is_openapi_3_1_and_describes_every_routed_method() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);

    let table: BTreeSet<(String, String)> =
        route_table().iter().map(|e| (e.path.to_owned(), e.method.to_owned())).collect();
    assert!(!table.is_empty());
    let documented = documented_operations(&doc);
    let undocumented: Vec<_> = table.difference(&documented).collect();
    assert!(undocumented.is_empty(), "routes the document does not describe: {undocumented:?}");
    let phantom: Vec<_> = documented.difference(&table).collect();
    assert!(phantom.is_empty(), "operations the server does not route: {phantom:?}");

    for endpoint in route_table() {
        let operation = &doc["paths"][endpoint.path][endpoint.method.to_ascii_lowercase()];
        let responses = operation["responses"].as_object().unwrap();
        // A redirect is the success of the browser routes (a provider sign-in).
        assert!(responses.keys().any(|s| s.starts_with('2') || s == "302"), "{endpoint:?}: no success response");
        assert!(responses.contains_key("500"), "{endpoint:?}: any route can fail with a bug");
        // The table is what the server routes: the method is served, any other is 405 with `Allow`.
        let method = Method::from_bytes(endpoint.method.as_bytes()).unwrap();
        let response = app.client.request(method, app.url(endpoint.path)).send().await.unwrap();
        assert_ne!(response.status(), StatusCode::NOT_FOUND, "{endpoint:?} is not routed");
        assert_ne!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{endpoint:?} is not routed");
        let methods: Vec<&str> = route_table().iter().filter(|e| e.path == endpoint.path).map(|e| e.method).collect();
        let other = ["GET", "DELETE", "PUT", "PATCH"].into_iter().find(|m| !methods.contains(m)).unwrap();
        let response = app
            .client
            .request(Method::from_bytes(other.as_bytes()).unwrap(), app.url(endpoint.path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{endpoint:?}");
        assert_eq!(response.headers()["allow"], methods.join(", "), "{endpoint:?}");
    }
}

#[actix_web::test]
async fn openapi_error_responses_list_codes_of_the_catalog() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let catalog = catalog();

    // The envelope's `code` takes exactly the catalog's codes.
    let error = &doc["components"]["schemas"]["Error"];
    let all_codes: BTreeSet<&str> = catalog.keys().copied().collect();
    assert_eq!(strings(&error["properties"]["code"]["enum"]), all_codes);
    assert_eq!(strings(&error["required"]), BTreeSet::from(["code", "message", "type"]));

    let mut error_responses = 0;
    for endpoint in route_table() {
        let operation = &doc["paths"][endpoint.path][endpoint.method.to_ascii_lowercase()];
        for (status, response) in operation["responses"].as_object().unwrap() {
            let status: u16 = status.parse().unwrap();
            if status < 400 {
                continue;
            }
            error_responses += 1;
            let schema = &response["content"]["application/json"]["schema"];
            assert_eq!(schema["allOf"][0]["$ref"], "#/components/schemas/ErrorEnvelope", "{endpoint:?} {status}");
            let fields = &schema["allOf"][1]["properties"]["error"]["properties"];
            let codes = strings(&fields["code"]["enum"]);
            assert!(!codes.is_empty(), "{endpoint:?} {status}: no code listed");
            for code in &codes {
                let (catalog_status, kind) = catalog
                    .get(code)
                    .unwrap_or_else(|| panic!("{endpoint:?} {status}: `{code}` is not in the catalog"));
                assert_eq!(*catalog_status, status, "{endpoint:?}: `{code}` is documented under the wrong status");
                assert!(strings(&fields["type"]["enum"]).contains(kind), "{endpoint:?} {status}: type of `{code}`");
            }
            if status == 429 || status == 503 {
                assert!(response["headers"]["Retry-After"].is_object(), "{endpoint:?} {status}: Retry-After");
            }
        }
    }
    assert!(error_responses > route_table().len());
}

#[actix_web::test]
async fn openapi_document_describes_real_responses() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    // A real error answers with a documented code for its status.
    let response = app.get("/v1/auth/session").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    let documented = &doc["paths"]["/v1/auth/session"]["get"]["responses"]["401"]["content"]["application/json"]["schema"]
        ["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"];
    assert!(strings(documented).contains(body["error"]["code"].as_str().unwrap()), "{body}");
    // Token responses are closed objects with the fields the handlers write.
    let token = &doc["components"]["schemas"]["TokenResponse"];
    assert_eq!(token["additionalProperties"], false);
    let user = app.signed_up_user().await;
    let fields: BTreeSet<&str> = user.tokens.as_object().unwrap().keys().map(String::as_str).collect();
    let mut properties: BTreeSet<&str> = token["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    // Only a sign-up by email domain has it (register.rs): optional, and not in this response.
    assert!(properties.remove("pending_organization"), "{token}");
    assert_eq!(fields, properties);
    assert_eq!(fields, strings(&token["required"]));
}
