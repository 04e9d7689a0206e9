//! Survey and response documents on Automerge: typed creation, edits, reads and conflicts.
//!
//! Everything above this module sees typed values ([`ResponseMeta`], [`crate::Answers`],
//! [`Conflict`], survey versions); only this module knows how they are laid out in Automerge.
//! The layout is a persisted format shared by every device and the server, so it is written
//! down here and frozen by the golden document `fixtures/golden/response-v1.automerge`: a change
//! to it must be deliberate (bump [`SCHEMA_VERSION`] and teach the readers the old layout).
//!
//! # Response document (schema 1)
//!
//! One document per response. Root map:
//!
//! | key              | Automerge value                 | meaning                                     |
//! |------------------|---------------------------------|---------------------------------------------|
//! | `schema`         | Int `1`                         | layout version                              |
//! | `kind`           | Str `"response"`                | guards against opening a survey as a response |
//! | `response_id`    | Str, hyphenated lowercase UUID  |                                             |
//! | `survey_id`      | Str, hyphenated lowercase UUID  |                                             |
//! | `survey_version` | Int (0..=u32::MAX)              | the version the response was collected on   |
//! | `author_device`  | Str                             | device that created the response            |
//! | `created_at`     | Timestamp (ms since the epoch)  | written once, by the creator                |
//! | `updated_at`     | Timestamp (ms since the epoch)  | written by every edit; concurrent writes read as their maximum |
//! | `status`         | Str `draft` / `submitted` / `reviewed` |                                      |
//! | `answers`        | Map: question name → Str / Int / F64 | never an Automerge Text object         |
//! | `authors`        | Map: actor id (hex) → Str label | e.g. `device:tablet-07`, `member:alice`     |
//!
//! Readers accept an integer stored as Uint as well as Int, and a time stored as Int as well as
//! Timestamp, because other Automerge implementations choose differently; every other
//! deviation is a [`DocError`].
//!
//! # Survey document (schema 1)
//!
//! Root map: `schema` (Int 1), `kind` (Str `"survey"`), `survey_id` (Str UUID), `form_id` (Str),
//! `title` (Str), `versions` (Map: decimal version number → Map { `definition`: Str holding the
//! definition JSON, `published_at`: Timestamp ms }).
//!
//! # Changes, actors and who wrote what
//!
//! Each typed edit is exactly one Automerge change, whose time is the caller's `now` in whole
//! seconds (Automerge's convention; the crate reads no clock). The actor of a change is the
//! writer's per-install id; the first time an actor edits a response it also records
//! `authors[actor hex] = label`, so a conflict can name who set each value. Only the creator of
//! a document calls `new`: every other replica must start from the creator's changes, or the
//! two replicas would hold two different `answers` maps under one key.
//!
//! # Conflicts
//!
//! Each answer is an Automerge map key, i.e. a multi-value register: a write supersedes every
//! value its writer had seen, and writes made without seeing each other all survive a merge.
//! Reads show Automerge's deterministic winner (greatest Lamport op id: counter, then actor).
//! [`ResponseDoc::conflicts`] lists the keys still holding several values that are not all
//! equal, each value with the actor of the op that wrote it (from the op id) and that actor's
//! label from `authors`. [`ResponseDoc::resolve`] is a write made after seeing them all, so it
//! supersedes them on every replica it reaches.
//!
//! # Untrusted bytes
//!
//! Loading, building from changes, applying changes and [`ChangeInfo::decode`] hand bytes to
//! Automerge, which can panic or exhaust memory on crafted input. The server calls them on
//! client bytes only inside its sandboxed worker; clients call them on bytes from their server.

mod change;
mod error;
mod repeat;
mod response;
mod scalar;
mod survey_doc;

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod golden_v2_tests;
#[cfg(test)]
mod repeat_convergence_tests;
#[cfg(test)]
mod repeat_malformed_tests;
#[cfg(test)]
mod repeat_merge_tests;
#[cfg(test)]
mod repeat_tests;

pub use automerge::{ActorId, ChangeHash};
pub use change::ChangeInfo;
pub use error::DocError;
pub use repeat::assign_instance_ids;
pub use response::{Conflict, ConflictValue, NewResponse, ResponseDoc, ResponseMeta, Status};
pub use survey_doc::{PublishedVersion, SurveyDoc, SurveyMeta};

/// The layout version written into the `schema` key of survey documents and of response
/// documents without repeat instances, which readers of schema 1 can still read.
pub const SCHEMA_VERSION: i64 = 1;

/// The layout version of a response document once it holds a repeat instance; the newest
/// response layout this build reads.
pub const RESPONSE_SCHEMA_REPEATS: i64 = 2;
