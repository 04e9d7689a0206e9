//! The server's integration tests, in one binary (each test binary costs a link): router
//! tests (no socket) and end-to-end tests that run the real `fieldsync-server` on port 0.
//! The modules live in `tests/server/`.

#[path = "server/common.rs"]
mod common;

#[path = "server/authz.rs"]
mod authz;

#[path = "server/sync.rs"]
mod sync;

#[path = "server/surveys.rs"]
mod surveys;

#[path = "server/support.rs"]
mod support;

#[path = "server/malformed.rs"]
mod malformed;

#[path = "server/hostile.rs"]
mod hostile;

#[path = "server/durability.rs"]
mod durability;

#[path = "server/limits.rs"]
mod limits;

#[path = "server/overload.rs"]
mod overload;

#[path = "server/at_rest.rs"]
mod at_rest;

#[path = "server/rights.rs"]
mod rights;

#[path = "server/media.rs"]
mod media;

#[path = "server/fuzz_replay.rs"]
mod fuzz_replay;

#[path = "server/storage.rs"]
mod storage;

#[path = "server/instances.rs"]
mod instances;

#[path = "server/openapi.rs"]
mod openapi;

#[path = "server/web.rs"]
mod web;

#[path = "server/links.rs"]
mod links;
