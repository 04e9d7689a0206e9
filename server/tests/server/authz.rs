//! The authorization matrix: every endpoint × every kind of caller × {own organisation,
//! another organisation} answers what `server/tests/authz_matrix.txt` says, and no body sent
//! to a caller of organisation A ever holds anything of organisation B.
//!
//! "another" means: every id in the request (path and body) is organisation B's; requests
//! that carry no id name organisation B in the `X-Fieldsync-Org` header instead (which only
//! support staff may use, and B has support access off). Set `FIELDSYNC_WRITE_MATRIX=1` to
//! print the observed table instead of failing, then review every changed line by hand.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use fieldsync_protocol::api::Role;
use fieldsync_protocol::cbor::Limits;
use fieldsync_protocol::document::ResponseDoc;
use fieldsync_protocol::wire::{ErrorBody, Message, PullResponse, PushOutcome, PushResponse};
use fieldsync_server::service::new_credential;
use fieldsync_server::settings::Settings;
use fieldsync_server::storage::{AuditEvent, CredentialKind};
use uuid::Uuid;

use super::common::*;

const MATRIX: &str = "tests/authz_matrix.txt";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    Revoked,
    Enumerator,
    Coordinator,
    Ops,
    Admin,
    SupportOff,
    SupportOn,
}

const CALLERS: [(Who, &str); 8] = [
    (Who::Anonymous, "anonymous"),
    (Who::Revoked, "revoked"),
    (Who::Enumerator, "enumerator"),
    (Who::Coordinator, "coordinator"),
    (Who::Ops, "ops"),
    (Who::Admin, "admin"),
    (Who::SupportOff, "support_off"),
    (Who::SupportOn, "support_on"),
];

/// The ids a request targets: organisation A's ("own") or B's ("another").
#[derive(Debug, Clone)]
struct Target {
    survey: Uuid,
    response: Uuid,
    /// A member that may be revoked.
    victim: String,
    enumerator: String,
    /// Named in `X-Fieldsync-Org` by requests without ids.
    header_org: String,
}

/// One endpoint: its table name, whether it takes ids, and how to build its request.
struct Endpoint {
    name: &'static str,
    takes_ids: bool,
    build: fn(&Target) -> Req,
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            name: "GET /healthz",
            takes_ids: false,
            build: |_| Req::get("/healthz"),
        },
        Endpoint {
            name: "POST /v1/login",
            takes_ids: false,
            build: |_| {
                Req::post("/v1/login").json(&serde_json::json!({ "token": "fsl_not-a-real-token" }))
            },
        },
        Endpoint {
            name: "POST /v1/enroll",
            takes_ids: false,
            build: |_| {
                Req::post("/v1/enroll").json(&serde_json::json!({ "code": "fse_not-a-real-code" }))
            },
        },
        Endpoint {
            name: "POST /v1/logout",
            takes_ids: false,
            build: |_| Req::post("/v1/logout"),
        },
        Endpoint {
            name: "GET /v1/me",
            takes_ids: false,
            build: |_| Req::get("/v1/me"),
        },
        Endpoint {
            name: "GET /v1/members",
            takes_ids: false,
            build: |_| Req::get("/v1/members"),
        },
        Endpoint {
            name: "POST /v1/members",
            takes_ids: false,
            build: |_| {
                Req::post("/v1/members")
                    .json(&serde_json::json!({ "name": "New Ops", "role": "ops" }))
            },
        },
        Endpoint {
            name: "POST /v1/members/{id}/revoke",
            takes_ids: true,
            build: |t| Req::post(format!("/v1/members/{}/revoke", t.victim)),
        },
        Endpoint {
            name: "POST /v1/enumerators",
            takes_ids: true,
            build: |t| {
                Req::post("/v1/enumerators")
                    .json(&serde_json::json!({ "name": "New Enumerator", "surveys": [t.survey] }))
            },
        },
        Endpoint {
            name: "PUT /v1/org/support-access",
            takes_ids: false,
            build: |_| {
                Req::put("/v1/org/support-access").json(&serde_json::json!({ "enabled": false }))
            },
        },
        Endpoint {
            name: "GET /v1/audit",
            takes_ids: false,
            build: |_| Req::get("/v1/audit"),
        },
        Endpoint {
            name: "GET /v1/surveys",
            takes_ids: false,
            build: |_| Req::get("/v1/surveys"),
        },
        Endpoint {
            name: "POST /v1/surveys",
            takes_ids: false,
            build: |_| {
                Req::post("/v1/surveys").raw(
                    "application/json",
                    fixture("surveys/health-facility.json").into_bytes(),
                )
            },
        },
        Endpoint {
            name: "GET /v1/surveys/{id}",
            takes_ids: true,
            build: |t| Req::get(format!("/v1/surveys/{}", t.survey)),
        },
        Endpoint {
            name: "GET /v1/surveys/{id}/versions/{n}",
            takes_ids: true,
            build: |t| Req::get(format!("/v1/surveys/{}/versions/1", t.survey)),
        },
        Endpoint {
            name: "PUT /v1/surveys/{id}/status",
            takes_ids: true,
            build: |t| {
                Req::put(format!("/v1/surveys/{}/status", t.survey))
                    .json(&serde_json::json!({ "status": "open" }))
            },
        },
        Endpoint {
            name: "POST /v1/surveys/{id}/assignments",
            takes_ids: true,
            build: |t| {
                Req::post(format!("/v1/surveys/{}/assignments", t.survey))
                    .json(&serde_json::json!({ "enumerator_id": t.enumerator }))
            },
        },
        Endpoint {
            name: "GET /v1/surveys/{id}/responses",
            takes_ids: true,
            build: |t| Req::get(format!("/v1/surveys/{}/responses", t.survey)),
        },
        Endpoint {
            name: "GET /v1/surveys/{id}/export",
            takes_ids: true,
            build: |t| Req::get(format!("/v1/surveys/{}/export?format=jsonl", t.survey)),
        },
        Endpoint {
            name: "GET /v1/responses/{id}",
            takes_ids: true,
            build: |t| Req::get(format!("/v1/responses/{}", t.response)),
        },
        Endpoint {
            name: "POST /v1/sync/push",
            takes_ids: true,
            build: |t| {
                Req::post("/v1/sync/push").cbor(&push_request(vec![response(
                    t.survey,
                    1,
                    &[&[("enumerator_name", text("Matrix Row"))]],
                )]))
            },
        },
        Endpoint {
            name: "POST /v1/sync/pull",
            takes_ids: false,
            build: |_| Req::post("/v1/sync/pull").cbor(&pull_request(0, 1000)),
        },
    ]
}

/// What a reply is recorded as in the table: the status, and for a push the outcome of its
/// one document.
fn outcome(reply: &Reply) -> String {
    let status = reply.status.as_u16().to_string();
    match PushResponse::from_cbor(&reply.body, &Limits::SYNC) {
        Ok(push) if reply.status == StatusCode::OK => match &push.results[..] {
            [one] => match &one.outcome {
                PushOutcome::Stored { .. } => format!("{status}/stored"),
                PushOutcome::Rejected { code, .. } => {
                    format!(
                        "{status}/rejected:{}",
                        serde_json::to_value(code)
                            .expect("code")
                            .as_str()
                            .expect("str")
                    )
                }
                PushOutcome::Unknown => format!("{status}/unknown"),
            },
            other => panic!("a push of one document answered {} results", other.len()),
        },
        _ => status,
    }
}

/// Everything readable in a body: the text itself, and for CBOR the decoded message,
/// including the answers inside pulled changes.
fn readable(body: &[u8]) -> String {
    let mut out = String::from_utf8_lossy(body).into_owned();
    if let Ok(pull) = PullResponse::from_cbor(body, &Limits::SYNC) {
        out.push_str(&format!("{pull:?}"));
        for d in &pull.docs {
            if let Ok(doc) = ResponseDoc::from_changes(d.changes.iter().map(|c| c.as_slice())) {
                out.push_str(&format!("{:?}{:?}", doc.meta(), doc.answers()));
            }
        }
    } else if let Ok(push) = PushResponse::from_cbor(body, &Limits::SYNC) {
        out.push_str(&format!("{push:?}"));
    } else if let Ok(err) = ErrorBody::from_cbor(body, &Limits::SYNC) {
        out.push_str(&format!("{err:?}"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_each_caller_as_the_checked_in_table_says_and_never_leaks_another_org()
 {
    let settings = Settings {
        login_attempts: 1_000_000,
        ..Settings::for_region(REGION)
    };
    for db in test_databases() {
        let h = Harness::on(&db, settings.clone()).await;
        let a = h.org("Org Alpha").await;
        let b = h.org("Org Bravo Hidden Name").await;

        let survey_a = h
            .publish(
                &a.admin,
                &household_v1_as("household_survey", "Household Living Conditions Survey"),
            )
            .await
            .survey_id;
        let survey_b = h
            .publish(
                &b.admin,
                &household_v1_as("bravo_census", "Bravo Confidential Census"),
            )
            .await
            .survey_id;
        h.assign(&a.admin, survey_a, &a.enumerator_id).await;
        h.assign(&b.admin, survey_b, &b.enumerator_id).await;
        let doc_a = response(survey_a, 1, &[&[("head_name", text("Alpha Respondent"))]]);
        let doc_b = response(
            survey_b,
            1,
            &[&[("head_name", text("bravo-marker-answer"))]],
        );
        let (response_a, response_b) = (doc_a.doc_id, doc_b.doc_id);
        h.push_ok(&a.enumerator, vec![doc_a]).await;
        h.push_ok(&b.enumerator, vec![doc_b]).await;
        h.materialize().await;
        let (victim_a, _) = h.member(&a, Role::Coordinator, "Victim Alpha").await;
        let (victim_b, _) = h.member(&b, Role::Coordinator, "Victim Bravo").await;
        let (revoked_id, revoked) = h.member(&a, Role::Coordinator, "Logged Out").await;
        let r = h.send(Req::post("/v1/logout").token(&revoked)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let (support_id, support) = h.support("Support Agent").await;

        let own = Target {
            survey: survey_a,
            response: response_a,
            victim: victim_a,
            enumerator: a.enumerator_id.clone(),
            header_org: a.id.clone(),
        };
        let another = Target {
            survey: survey_b,
            response: response_b,
            victim: victim_b.clone(),
            enumerator: b.enumerator_id.clone(),
            header_org: b.id.clone(),
        };
        // Nothing of organisation B may reach a caller of A, unless the caller itself sent it.
        let forbidden: Vec<String> = [
            b.id.clone(),
            b.name.clone(),
            b.admin_id.clone(),
            b.coordinator_id.clone(),
            b.enumerator_id.clone(),
            victim_b,
            survey_b.to_string(),
            response_b.to_string(),
            "Bravo Confidential Census".into(),
            "bravo_census".into(),
            "bravo-marker-answer".into(),
            "Victim Bravo".into(),
        ]
        .into();
        let _ = revoked_id;

        let mut observed: BTreeMap<(String, String, String), String> = BTreeMap::new();
        let mut order = Vec::new();
        let mut leaks = Vec::new();
        for endpoint in endpoints() {
            for (org_name, target) in [("own", &own), ("another", &another)] {
                for (who, who_name) in CALLERS {
                    // The support switch of A as this caller needs it; everyone else sees it off.
                    let on = who == Who::SupportOn;
                    let org_id = a.id.clone();
                    h.state
                        .db
                        .set_support_access(
                            &org_id,
                            on,
                            AuditEvent::operator(Some(&org_id), "test"),
                        )
                        .await
                        .expect("switch");
                    // An export waits for pending materialisation; settle it first.
                    h.materialize().await;
                    let token = match who {
                        Who::Anonymous => None,
                        Who::Revoked => Some(revoked.clone()),
                        // Logging out revokes the token, so each logout row gets a fresh one.
                        _ if endpoint.name == "POST /v1/logout" => {
                            let (principal, kind) = match who {
                                Who::Enumerator => {
                                    (a.enumerator_id.clone(), CredentialKind::Device)
                                }
                                Who::Coordinator => {
                                    (a.coordinator_id.clone(), CredentialKind::Session)
                                }
                                Who::Ops => (ops_id(&h, &a).await, CredentialKind::Session),
                                Who::Admin => (a.admin_id.clone(), CredentialKind::Session),
                                _ => (support_id.clone(), CredentialKind::Session),
                            };
                            let (token, credential) = new_credential(kind).expect("token");
                            h.state
                                .db
                                .issue_credential(
                                    &principal,
                                    credential,
                                    fieldsync_server::storage::AuditEvent::operator(
                                        None,
                                        "test_credential",
                                    ),
                                )
                                .await
                                .expect("issue");
                            Some(token)
                        }
                        Who::Enumerator => Some(a.enumerator.clone()),
                        Who::Coordinator => Some(a.coordinator.clone()),
                        Who::Ops => Some(a.ops.clone()),
                        Who::Admin => Some(a.admin.clone()),
                        Who::SupportOff | Who::SupportOn => Some(support.clone()),
                    };
                    let header = if org_name == "another" && !endpoint.takes_ids {
                        target.header_org.clone()
                    } else {
                        a.id.clone()
                    };
                    let req = (endpoint.build)(target)
                        .maybe_token(token.as_deref())
                        .org(Some(&header));
                    let sent = format!(
                        "{} {} {}",
                        req.path,
                        String::from_utf8_lossy(&req.body),
                        header
                    );
                    let reply = h.send(req).await;
                    let key = (
                        endpoint.name.to_owned(),
                        who_name.to_owned(),
                        org_name.to_owned(),
                    );
                    order.push(key.clone());
                    observed.insert(key, outcome(&reply));
                    let body = if endpoint.name == "GET /v1/audit" {
                        audit_without_support_paths(&reply.body)
                    } else {
                        readable(&reply.body)
                    };
                    for f in &forbidden {
                        if body.contains(f.as_str()) && !sent.contains(f.as_str()) {
                            leaks.push(format!(
                                "{} as {who_name} ({org_name}): body holds {f:?}: {body}",
                                endpoint.name
                            ));
                        }
                    }
                }
            }
        }

        let table = render(&order, &observed);
        let path = format!("{}/{MATRIX}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("FIELDSYNC_WRITE_MATRIX").is_some() {
            std::fs::write(&path, &table).expect("write matrix");
        }
        let expected =
            parse(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}")));
        let mut problems = Vec::new();
        for key in &order {
            match expected.get(key) {
                None => problems.push(format!("{} {} {}: not in the table", key.0, key.1, key.2)),
                Some(want) if want != &observed[key] => problems.push(format!(
                    "{} {} {}: expected {want}, got {}",
                    key.0, key.1, key.2, observed[key]
                )),
                Some(_) => {}
            }
        }
        for key in expected.keys() {
            if !observed.contains_key(key) {
                problems.push(format!(
                    "{} {} {}: in the table but not tested",
                    key.0, key.1, key.2
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "authorization matrix mismatches:\n{}",
            problems.join("\n")
        );
        assert!(
            leaks.is_empty(),
            "another organisation's data leaked:\n{}",
            leaks.join("\n")
        );
    }
}

/// The audit log records each support request's path verbatim, including ids the support
/// agent typed (which may be another organisation's): that is the agent's own input, shown to
/// the organisation it acted on, not data drawn from the other organisation. Drop exactly
/// those targets before looking for leaks.
fn audit_without_support_paths(body: &[u8]) -> String {
    let Ok(mut entries) = serde_json::from_slice::<Vec<serde_json::Value>>(body) else {
        return readable(body);
    };
    for e in &mut entries {
        let support = e["action"]
            .as_str()
            .is_some_and(|a| a.starts_with("support_access"))
            && e["actor_role"] == "support";
        if support {
            e["target"] = serde_json::Value::Null;
        }
    }
    serde_json::Value::from(entries).to_string()
}

async fn ops_id(h: &Harness, org: &Org) -> String {
    let members = h.state.db.members(&org.id).await.expect("members");
    members
        .iter()
        .find(|m| m.role == Role::Ops && m.name == "Ops")
        .map(|m| m.id.to_string())
        .expect("ops id")
}

fn render(
    order: &[(String, String, String)],
    observed: &BTreeMap<(String, String, String), String>,
) -> String {
    let mut out = String::from(
        "# The authorization matrix, checked by server/tests/server/authz.rs.\n\
         # endpoint | caller | org | expected status (push: /outcome of its one document)\n\
         # org \"own\": ids of the caller's organisation; \"another\": every id in the request is\n\
         # another organisation's, or (for requests without ids) X-Fieldsync-Org names it.\n\
         # support_off / support_on: a support agent acting on the caller's organisation with its\n\
         # support-access switch off / on. revoked: a logged-out session.\n",
    );
    for key in order {
        out.push_str(&format!(
            "{:<36} {:<12} {:<8} {}\n",
            key.0, key.1, key.2, observed[key]
        ));
    }
    out
}

fn parse(text: &str) -> BTreeMap<(String, String, String), String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [method, path, caller, org, expect] = parts[..] else {
            panic!(
                "{MATRIX} line {}: expected `METHOD PATH CALLER ORG STATUS`: {line}",
                n + 1
            );
        };
        let prev = out.insert(
            (
                format!("{method} {path}"),
                caller.to_owned(),
                org.to_owned(),
            ),
            expect.to_owned(),
        );
        assert!(prev.is_none(), "{MATRIX} line {}: duplicate row", n + 1);
    }
    out
}
