//! End-to-end tests: the real `fieldsync-server` on 127.0.0.1 and the real `fieldsync` CLI,
//! each test with its own server data directory and client homes.

#[path = "e2e/analysis.rs"]
mod analysis;
#[path = "e2e/audit_chain.rs"]
mod audit_chain;
#[path = "e2e/backup_erasures.rs"]
mod backup_erasures;
#[path = "e2e/backup_restore.rs"]
mod backup_restore;
#[path = "e2e/bad_input.rs"]
mod bad_input;
#[path = "e2e/bench.rs"]
mod bench;
#[path = "e2e/concurrent_edits.rs"]
mod concurrent_edits;
#[path = "e2e/crash_loop.rs"]
mod crash_loop;
#[path = "e2e/fault_proxy.rs"]
mod fault_proxy;
#[path = "e2e/import_export.rs"]
mod import_export;
#[path = "e2e/interruption.rs"]
mod interruption;
#[path = "e2e/invitations.rs"]
mod invitations;
#[path = "e2e/killed_interview.rs"]
mod killed_interview;
#[path = "e2e/media.rs"]
mod media;
#[path = "e2e/offline.rs"]
mod offline;
#[path = "e2e/operations.rs"]
mod operations;
#[path = "e2e/provisioning.rs"]
mod provisioning;
#[path = "e2e/readme.rs"]
mod readme;
#[path = "e2e/rights.rs"]
mod rights;
#[path = "e2e/rights_support.rs"]
mod rights_support;
#[path = "e2e/secrets_at_rest.rs"]
mod secrets_at_rest;
#[path = "e2e/terminal.rs"]
mod terminal;
#[path = "e2e/tls.rs"]
mod tls;
#[path = "e2e/versions.rs"]
mod versions;
#[path = "e2e/web_engine.rs"]
mod web_engine;
#[path = "e2e/web_form.rs"]
mod web_form;
#[path = "e2e/workflows.rs"]
mod workflows;
#[path = "e2e/xlsform.rs"]
mod xlsform;
