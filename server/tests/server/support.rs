//! The support-access switch an organisation controls: support staff are refused while it is
//! off (the default), allowed once an admin switches it on, refused again once it is off, and
//! every support request, refused or not, is in the organisation's audit log.

use axum::http::StatusCode;
use fieldsync_protocol::api::{MemberInfo, WhoAmI};
use fieldsync_protocol::wire::ErrorCode;

use super::common::*;

async fn switch(h: &Harness, admin: &str, enabled: bool) {
    let r = h
        .send(
            Req::put("/v1/org/support-access")
                .token(admin)
                .json(&serde_json::json!({ "enabled": enabled })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "switch: {}", r.text());
}

async fn support_entries(h: &Harness, admin: &str) -> Vec<(String, String)> {
    let r = h.send(Req::get("/v1/audit").token(admin)).await;
    assert_eq!(r.status, StatusCode::OK);
    let entries: Vec<serde_json::Value> = r.json();
    entries
        .iter()
        .filter(|e| e["actor_role"] == "support")
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["target"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_is_refused_until_the_admin_switches_access_on_and_every_access_is_audited() {
    let h = Harness::new().await;
    let org = h.org("Acme").await;
    let other = h.org("Other Org").await;
    let (_, support) = h.support("Sam Support").await;
    let as_support = |path: &str, org_id: &str| Req::get(path).token(&support).org(Some(org_id));

    // Off by default.
    let me: WhoAmI = h.send(Req::get("/v1/me").token(&org.admin)).await.json();
    assert!(!me.support_access);
    let r = h.send(as_support("/v1/members", &org.id)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error().code, ErrorCode::Forbidden);
    assert!(
        r.error().message.contains("switched off support access"),
        "{}",
        r.error().message
    );

    // Only the organisation's admin may switch it.
    let r = h
        .send(
            Req::put("/v1/org/support-access")
                .token(&org.coordinator)
                .json(&serde_json::json!({ "enabled": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    switch(&h, &org.admin, true).await;
    let r = h.send(as_support("/v1/members", &org.id)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let members: Vec<MemberInfo> = r.json();
    assert!(members.iter().any(|m| m.name == "Coordinator"));
    let r = h.send(as_support("/v1/surveys", &org.id)).await;
    assert_eq!(r.status, StatusCode::OK);
    // Support reads; it does not manage.
    let r = h
        .send(
            Req::post("/v1/members")
                .token(&support)
                .org(Some(&org.id))
                .json(&serde_json::json!({ "name": "X", "role": "admin" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Access to one organisation is not access to another.
    let r = h.send(as_support("/v1/members", &other.id)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    switch(&h, &org.admin, false).await;
    let r = h.send(as_support("/v1/surveys", &org.id)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    assert_eq!(
        support_entries(&h, &org.admin).await,
        [
            ("support_access_refused", "GET /v1/members"),
            ("support_access", "GET /v1/members"),
            ("support_access", "GET /v1/surveys"),
            ("support_access", "POST /v1/members"),
            ("support_access_refused", "GET /v1/surveys"),
        ]
        .map(|(a, t)| (a.to_owned(), t.to_owned()))
    );
    // The request against the other organisation is in that organisation's log, not ours.
    assert_eq!(
        support_entries(&h, &other.admin).await,
        [(
            "support_access_refused".to_owned(),
            "GET /v1/members".to_owned()
        )]
    );
    // The switching itself is audited too.
    let r = h.send(Req::get("/v1/audit").token(&org.admin)).await;
    let actions: Vec<String> = r
        .json::<Vec<serde_json::Value>>()
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(
        actions.contains(&"support_access_on".to_owned())
            && actions.contains(&"support_access_off".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_must_name_an_existing_organisation() {
    let h = Harness::new().await;
    let org = h.org("Acme").await;
    let (_, support) = h.support("Sam Support").await;
    let r = h.send(Req::get("/v1/members").token(&support)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error().message.contains("x-fieldsync-org"),
        "{}",
        r.error().message
    );
    let r = h
        .send(
            Req::get("/v1/members")
                .token(&support)
                .org(Some(&uuid::Uuid::new_v4().to_string())),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Neither reached the organisation's log (neither named it).
    assert!(support_entries(&h, &org.admin).await.is_empty());
}

/// Support credentials are revocable like every other token: once the operator revokes the
/// agent, its session is refused even by an organisation that allows support access.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_support_agent_is_refused_everywhere() {
    let h = Harness::new().await;
    let org = h.org("Acme").await;
    switch(&h, &org.admin, true).await;
    let (support_id, support) = h.support("Sam Support").await;
    let read = || Req::get("/v1/members").token(&support).org(Some(&org.id));
    assert_eq!(h.send(read()).await.status, StatusCode::OK);
    let revoked = fieldsync_server::service::orgs::revoke_support(&h.state.db, &support_id)
        .await
        .expect("revoke");
    assert!(revoked);
    assert_eq!(h.send(read()).await.status, StatusCode::UNAUTHORIZED);
    // An unknown id is reported, not silently accepted.
    let unknown = fieldsync_server::service::orgs::revoke_support(
        &h.state.db,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("revoke");
    assert!(!unknown);
}
