//! The OpenAPI document (`GET /v1/openapi.json`) against the router itself: every route the
//! router mounts, read from its source, is described (or, for the CBOR sync routes, is in
//! `docs/protocol.md`); the document declares the bearer token exactly where the router asks
//! for one; and the schemas follow the types' serde attributes. A route added without its
//! description fails here.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use fieldsync_protocol::api::EXPORT_TOTAL_HEADER;
use serde_json::{Value, json};

use super::common::*;

/// The router's source: the route table is read from it.
const ROUTER: &str = include_str!("../../src/api/mod.rs");
/// The protocol document, which describes the CBOR sync routes.
const PROTOCOL: &str = include_str!("../../../docs/protocol.md");

/// The routes without a token: sign-in, health, this document.
const PUBLIC: &[&str] = &[
    "POST /v1/login",
    "POST /v1/enroll",
    "GET /healthz",
    "GET /readyz",
    "GET /v1/openapi.json",
];

/// The operations of a path item, by lower-case method.
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// Every `(METHOD, path)` the router mounts: each `.route("PATH", get(h).post(h2)...)` of the
/// router's source, comments left out.
fn routes() -> BTreeSet<(String, String)> {
    let code: String = ROUTER
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    // The check below sees only `.route` calls in this file: routes mounted any other way
    // would escape it.
    for other in [
        ".nest(",
        ".nest_service(",
        ".route_service(",
        ".route_layer(",
    ] {
        assert!(
            !code.contains(other),
            "the router uses {other}: teach this test to read it"
        );
    }
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices(".route(") {
        let call = &code[at + ".route(".len()..];
        let call = &call[..closing(call)];
        let (path, methods) = call
            .split_once(',')
            .unwrap_or_else(|| panic!("unexpected route call: {call}"));
        let path = path.trim().trim_matches('"').to_owned();
        for method in method_calls(methods) {
            assert!(
                METHODS.contains(&method.as_str()),
                "{path}: `{method}(…)` is not a method this test knows; teach it"
            );
            found.insert((method.to_uppercase(), path.clone()));
        }
    }
    found
}

/// The length of `s` up to the parenthesis that closes the one just before it.
fn closing(s: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return i,
            ')' => depth -= 1,
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {s}")
}

/// The names called at the top level of a method-router expression: `get(a).post(b)` gives
/// `get` and `post`.
fn method_calls(expr: &str) -> Vec<String> {
    let (mut names, mut name, mut depth) = (Vec::new(), String::new(), 0usize);
    for c in expr.chars() {
        match c {
            '(' => {
                if depth == 0 && !name.is_empty() {
                    names.push(std::mem::take(&mut name));
                }
                depth += 1;
            }
            ')' => depth -= 1,
            c if depth == 0 && (c.is_alphanumeric() || c == '_') => name.push(c),
            _ if depth == 0 => name.clear(),
            _ => {}
        }
    }
    names
}

async fn document(h: &Harness) -> Value {
    let reply = h.send(Req::get("/v1/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        reply.content_type
    );
    reply.json()
}

/// Every operation of the document: `(METHOD, path, operation)`.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut ops = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                ops.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn openapi_document_is_served_without_a_token() {
    let h = Harness::new().await;
    let doc = document(&h).await;
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "openapi {version}");
    assert_eq!(doc["info"]["title"], "fieldsync management API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let about = doc["info"]["description"].as_str().unwrap_or_default();
    assert!(about.contains("docs/protocol.md"), "{about}");
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&bearer["type"], &bearer["scheme"]),
        (&json!("http"), &json!("bearer"))
    );
}

#[tokio::test]
async fn openapi_describes_every_route_and_the_protocol_the_sync_routes() {
    let h = Harness::new().await;
    let doc = document(&h).await;
    let routes = routes();
    // The parser read the table (a broken one would pass with nothing to check).
    for known in [
        ("GET", "/healthz"),
        ("GET", "/v1/members"),
        ("POST", "/v1/members"),
        ("GET", "/v1/responses/{id}/media/{name}"),
        ("POST", "/v1/sync/media/chunk"),
    ] {
        let known = (known.0.to_owned(), known.1.to_owned());
        assert!(
            routes.contains(&known),
            "{known:?} not read from the router"
        );
    }
    assert!(routes.len() >= 35, "only {} routes read", routes.len());

    let mut missing = Vec::new();
    for (method, path) in &routes {
        let described = doc["paths"][path][method.to_lowercase()].is_object();
        if path.starts_with("/v1/sync/") {
            // The CBOR routes are the protocol's, documented there and not here.
            assert!(
                !described,
                "{method} {path} is a CBOR route: describe it in protocol.md"
            );
            assert!(
                PROTOCOL.contains(&format!("{method} {path}")),
                "{method} {path} is not in docs/protocol.md"
            );
        } else if !described {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an OpenAPI description (add #[utoipa::path] and list the handler in \
         api/openapi.rs): {missing:?}"
    );

    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(
            ids.insert(id.clone()),
            "{method} {path}: operationId {id:?} is not unique"
        );
        assert!(
            routes.contains(&(method.clone(), path.clone())),
            "{method} {path} is described but the router has no such route"
        );
        // Each `{param}` of the path is a declared path parameter, and no other.
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        let template: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, template, "{method} {path}: path parameters");
        assert!(op["summary"].is_string(), "{method} {path} has no summary");
        assert!(op["tags"].is_array(), "{method} {path} has no tag");
        // Every error answers the error body (or, on /readyz, its own verdict).
        for (status, response) in op["responses"].as_object().expect("responses") {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert!(
                    schema == "#/components/schemas/ErrorBody"
                        || (path == "/readyz" && schema == "#/components/schemas/Readiness"),
                    "{method} {path} {status}: {schema}"
                );
            }
            if status == "429" {
                assert!(
                    response["headers"]["retry-after"].is_object(),
                    "{method} {path}"
                );
            }
        }
    }
    let export = &doc["paths"]["/v1/surveys/{id}/export"]["get"]["responses"]["200"];
    assert!(
        export["headers"][EXPORT_TOTAL_HEADER].is_object(),
        "{export}"
    );
    for media in ["text/csv; charset=utf-8", "application/x-ndjson"] {
        assert!(export["content"][media].is_object(), "{export}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_declares_the_bearer_token_exactly_where_the_router_demands_one() {
    let h = Harness::new().await;
    let doc = document(&h).await;
    for (method, path, op) in operations(&doc) {
        let route = format!("{method} {path}");
        let declared = match &op["security"] {
            Value::Null => false,
            Value::Array(a) if a.is_empty() => false,
            other => {
                assert_eq!(other, &json!([{ "bearer": [] }]), "{route}");
                true
            }
        };
        assert_eq!(
            declared,
            !PUBLIC.contains(&route.as_str()),
            "{route}: security in the document"
        );
        // The router agrees: without a token, exactly these are refused as unauthenticated.
        let concrete = path
            .replace("{id}", &uuid::Uuid::nil().to_string())
            .replace("{version}", "1")
            .replace("{name}", "photo.jpg");
        let method: &'static str = match method.as_str() {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            other => panic!("{other}: add it here"),
        };
        let reply = h.send(Req::new(method, concrete)).await;
        assert_eq!(
            reply.status == StatusCode::UNAUTHORIZED,
            declared,
            "{route} without a token answered {}: {}",
            reply.status,
            reply.text()
        );
    }
}

/// The schemas read the serde attributes: snake_case enums, and optional (`Option`,
/// `default`, `skip_serializing_if`) fields not required.
#[tokio::test]
async fn openapi_schemas_follow_serde() {
    let h = Harness::new().await;
    let doc = document(&h).await;
    let schemas = &doc["components"]["schemas"];
    // The fields an object schema requires (none when it lists none).
    let required = |name: &str| -> BTreeSet<String> {
        assert!(schemas[name].is_object(), "no schema {name}");
        schemas[name]["required"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    for (name, fields) in [
        ("LoginRequest", &["token"][..]),
        ("EnrollRequest", &["code"]),
        ("ErrorBody", &["protocol", "code", "message"]),
        ("NewEnumerator", &["name"]),
        ("Published", &["survey_id", "form_id", "version"]),
        (
            "ResponseListItem",
            &[
                "id",
                "survey_version",
                "status",
                "valid",
                "errors",
                "conflicts",
                "updated_at",
            ],
        ),
        ("SubjectRecord", &["response", "processing"]),
        ("Retention", &[]),
    ] {
        let expected: BTreeSet<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        assert_eq!(required(name), expected, "{name}: required fields");
    }
    let values = |name: &str| schemas[name]["enum"].clone();
    assert_eq!(
        values("Role"),
        json!(["admin", "coordinator", "ops", "enumerator", "support"])
    );
    assert_eq!(values("SurveyStatus"), json!(["open", "closing", "closed"]));
    let codes = values("ErrorCode");
    for code in [
        "bad_request",
        "unsupported_protocol",
        "malformed_document",
        "internal",
    ] {
        assert!(
            codes.as_array().is_some_and(|c| c.contains(&json!(code))),
            "{codes}"
        );
    }
    // Uuids are strings of their format; an answer is one of its four shapes.
    assert_eq!(
        schemas["SessionGrant"]["properties"]["org_id"],
        json!({ "type": "string", "format": "uuid" })
    );
    // Schemas are named after our types, never after a container (a type alias's target).
    for name in schemas.as_object().expect("schemas").keys() {
        assert!(
            !["BTreeMap", "HashMap", "Vec", "Option"].contains(&name.as_str()),
            "{name}"
        );
    }
    assert_eq!(
        schemas["Answer"]["oneOf"].as_array().map(Vec::len),
        Some(4),
        "{}",
        schemas["Answer"]
    );
}
