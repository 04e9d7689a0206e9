//! The OpenAPI 3 document of the JSON management API, generated from the handlers'
//! `#[utoipa::path]` annotations and the API types' schemas, and served without a token at
//! `GET /v1/openapi.json`. The CBOR sync routes are described in `docs/protocol.md` instead.
//!
//! The handlers declare what is theirs: body, success, and the errors their service returns.
//! What every route shares, because the router's layers answer it before or around the handler
//! (a bad token, a full server, a body too large, the error body itself), is added here once,
//! by [`Conventions`], so that no handler can forget it.

use std::sync::OnceLock;

use fieldsync_protocol::wire::ErrorBody;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, Content, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{health, links, media, members, responses, rights, session, surveys};
use crate::auth::ORG_HEADER;

/// The name of the bearer-token security scheme the authenticated operations require.
const BEARER: &str = "bearer";

const DESCRIPTION: &str = "The JSON management API of a fieldsync server: sign-in, members \
and enumerators, surveys, responses and their export, files, respondents' rights, the audit \
log, and health checks. Every error is answered with an `ErrorBody` (its `code` is stable; its \
`message` says what to do), and every response carries the request's id in `x-request-id`, to \
quote when reporting a problem.\n\n\
The CBOR routes devices sync through (`POST /v1/sync/push`, `POST /v1/sync/pull`, \
`POST /v1/sync/media/offer`, `POST /v1/sync/media/chunk`) are not described here: see \
`docs/protocol.md` in the fieldsync repository.";

const BEARER_HELP: &str = "A session token (`fss_…`, from `POST /v1/login`) or a device token \
(`fsd_…`, from `POST /v1/enroll`), as `Authorization: Bearer <token>`. Support staff also name \
the organisation they act on in the `X-Fieldsync-Org` header.";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fieldsync management API",
        version = env!("CARGO_PKG_VERSION"),
        description = DESCRIPTION,
    ),
    paths(
        health::live,
        health::ready,
        document,
        session::login,
        session::enroll,
        session::logout,
        session::me,
        members::list,
        members::create,
        members::revoke,
        members::create_enumerator,
        members::reissue_code,
        members::support_access,
        members::audit,
        rights::verify_audit,
        rights::find,
        rights::export,
        rights::erase,
        rights::restrict,
        rights::unrestrict,
        rights::opt_out,
        rights::opt_in,
        rights::retention,
        surveys::list,
        surveys::publish,
        surveys::show,
        surveys::version,
        surveys::set_status,
        surveys::assign,
        links::create,
        links::list,
        links::revoke,
        links::invite,
        links::invitations,
        responses::list,
        responses::export,
        responses::show,
        media::list,
        media::download,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Conventions),
    tags(
        (name = "session", description = "Signing in with a one-time secret, and out"),
        (name = "members", description = "Members, enumerators, support access and the audit log"),
        (name = "surveys", description = "Publishing survey versions, status and assignments"),
        (name = "links", description = "Web-form links to surveys"),
        (name = "responses", description = "Reading and exporting collected responses"),
        (name = "media", description = "Files attached to responses"),
        (name = "subjects", description = "Respondents' rights: access, erasure, restriction, \
            objection, retention"),
        (name = "health", description = "Probes for load balancers and orchestrators"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "meta",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3 document of the management API",
        content_type = "application/json", body = Object))
)]
pub async fn document() -> axum::Json<&'static utoipa::openapi::OpenApi> {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    axum::Json(DOC.get_or_init(ApiDoc::openapi))
}

/// Why every authenticated route may fail, whatever its handler does: the admission layer
/// (`admit_caller`) and the authentication of support staff.
const ADMISSION: &[(&str, &str)] = &[
    ("400", "Support staff sent no X-Fieldsync-Org header."),
    (
        "401",
        "No bearer token, or one that is unknown, revoked or expired.",
    ),
    (
        "403",
        "A support agent's organisation has switched support access off.",
    ),
    (
        "404",
        "A support agent named an organisation that does not exist in this region.",
    ),
    (
        "408",
        "The request (or its body) took longer than the server allows.",
    ),
    (
        "429",
        "This caller already has as many requests in progress as it may.",
    ),
    (
        "503",
        "The server is at its concurrency limit or its in-flight body budget, or the database \
         is busy; retry shortly.",
    ),
];

/// Why a route that reads a typed JSON body may fail (the `Json` extractor).
const JSON_BODY: &[(&str, &str)] = &[("400", "The body is not the expected JSON.")];

/// Why any route that reads a body may fail.
const ANY_BODY: &[(&str, &str)] = &[("413", "The body is larger than the server accepts.")];

const INTERNAL: &[(&str, &str)] = &[("500", "The server hit an internal error and logged it.")];

/// What every operation shares (see the module's documentation): the bearer scheme, the
/// `X-Fieldsync-Org` header, the errors of admission and body reading, and the error body
/// on every error response that has no body of its own.
#[derive(Debug)]
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Components::new)
            .add_security_scheme(
                BEARER,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(BEARER_HELP))
                        .build(),
                ),
            );
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                shared(op);
            }
        }
    }
}

fn shared(op: &mut Operation) {
    let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let (typed, body) = match &op.request_body {
        Some(b) => (
            b.content
                .get("application/json")
                .is_some_and(|c| matches!(c.schema, Some(RefOr::Ref(_)))),
            true,
        ),
        None => (false, false),
    };
    let mut causes: Vec<(&str, &str)> = Vec::new();
    if authenticated {
        causes.extend(ADMISSION);
        op.parameters.get_or_insert_with(Vec::new).push(
            ParameterBuilder::new()
                .name(ORG_HEADER)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Support staff only: the id of the organisation acted on (refused while \
                     its support access is off; every request is audited).",
                ))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        );
    }
    if typed {
        causes.extend(JSON_BODY);
    }
    if body {
        causes.extend(ANY_BODY);
    }
    if authenticated || body {
        causes.extend(INTERNAL);
    }
    for (status, cause) in causes {
        match op.responses.responses.get_mut(status) {
            Some(RefOr::T(r)) => {
                r.description = format!("{}. {cause}", r.description.trim_end_matches('.'));
            }
            Some(RefOr::Ref(_)) => {}
            None => {
                let r = ResponseBuilder::new().description(cause).build();
                op.responses
                    .responses
                    .insert(status.to_owned(), RefOr::T(r));
            }
        }
    }
    // Every error is an `ErrorBody`, except where the route documents a body of its own
    // (the `/readyz` verdict); a refusal to retry later says when.
    for (status, response) in &mut op.responses.responses {
        if let RefOr::T(r) = response
            && (status.starts_with('4') || status.starts_with('5'))
            && r.content.is_empty()
        {
            r.content.insert(
                "application/json".to_owned(),
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
            if status == "429" || status == "503" {
                r.headers.insert(
                    "retry-after".to_owned(),
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::Integer))
                        .description(Some("Seconds to wait before trying again"))
                        .build(),
                );
            }
        }
    }
}
