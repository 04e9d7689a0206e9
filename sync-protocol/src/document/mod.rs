//! Survey and response documents on Automerge: typed creation, edits, reads and conflicts.
//!
//! Everything above this module sees typed values ([`ResponseMeta`], [`crate::Answers`],
//! [`Conflict`], survey versions); only this module knows how they are laid out in Automerge.
//! The layout is a persisted format shared by every device and the server, so it is written
//! down here and frozen by the golden documents `fixtures/golden/response-v1.automerge` and
//! `response-v2.automerge`: a change to it must be deliberate (a new schema number, readers
//! taught the old layouts, a new golden file).
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
//! | `status`         | Str `draft` / `submitted` / `has_issues` / `approved` / `rejected` / `edited` / `discarded` | `reviewed` (written before review states) reads as `approved` |
//! | `review_comment` | Str, optional                   | the latest review's comment                 |
//! | `answers`        | Map: question name → Str / Int / F64 | never an Automerge Text object         |
//! | `authors`        | Map: actor id (hex) → Str label | e.g. `device:tablet-07`, `member:alice`     |
//!
//! Readers accept an integer stored as Uint as well as Int, and a time stored as Int as well as
//! Timestamp, because other Automerge implementations choose differently; every other
//! deviation is a [`DocError`].
//!
//! # Response document (schema 2): repeats
//!
//! Schema 1 plus repeat instances ([`crate::Answer::Repeat`]). The root is the same, with
//! `schema` Int `2`. Each instance is an Automerge Map stored **directly in `answers`** under
//! the key `REPEAT#ID` (question names are XML names and never contain `#`), and the instances
//! of a nested repeat are keys `CHILD#ID` inside their parent instance's map, likewise:
//!
//! | key (in `answers` or in an instance) | Automerge value        | meaning                         |
//! |--------------------------------------|------------------------|---------------------------------|
//! | `QUESTION`                           | Str / Int / F64        | a scalar answer, as in schema 1 |
//! | `REPEAT#ID`                          | Map (an instance)      | one instance of repeat `REPEAT` |
//! | `_order` (in an instance only)       | F64 (Int/Uint read too), finite | the instance's position among its siblings |
//!
//! Inside an instance `_order` is therefore reserved: a question of that name inside a repeat
//! is refused with [`DocError::BadPath`] (as are names holding `#` or `/`).
//!
//! Why not one map per repeat holding its instances: two replicas that each add the first
//! member of a household would each create that map, i.e. two objects at one key, and a merge
//! shows only one of them, so one side's members would be lost. Instance keys are unique, so
//! they never collide. For the same reason a write never replaces an instance map: it edits
//! inside it.
//!
//! - **Ids** are hyphenated UUID v4s assigned on the first write of an instance given an
//!   empty id (or by [`assign_instance_ids`]); callers may bring their own, which must be
//!   unique within the response and contain neither `#` nor `/`. Two replicas that store the
//!   *same* new id concurrently would collide like a per-repeat map; fresh ids never do.
//! - **Order**: instances show by `_order`, ties by id, so every replica shows one order. A new
//!   instance appended gets the greatest `_order` of its siblings + 1 (concurrent appends tie
//!   and sort by id); one inserted or moved gets a position between its neighbours; when
//!   floating point runs out of room, the repeat's instances are renumbered 1, 2, …. The
//!   longest run of instances already in order keeps its positions, so a move writes one
//!   `_order`. Concurrent moves of one instance leave `_order` with several values; the shown
//!   one wins and this is not reported as a conflict.
//! - **Writes are granular.** Writing a repeat's list ([`ResponseDoc::set_answer`] with an
//!   [`crate::Answer::Repeat`]) adds the instances whose id is new, deletes the stored ones not
//!   listed, and in kept instances puts only fields whose shown value differs and deletes
//!   fields no longer listed, so concurrent edits elsewhere in the repeat survive. Paths write
//!   into one instance: `set_answer("members#ID/age", …)`, `remove_answer("members#ID")`. A
//!   scalar written at a repeat's name deletes its instances and the reverse.
//! - **An instance deleted on one replica while edited on another is gone after the merge**:
//!   the deletion removes the key, the edit went inside the map it named. Likewise for a
//!   nested instance whose parent is deleted.
//! - **Reads** ([`ResponseDoc::answers`], [`ResponseDoc::answer`]) give each repeat as its
//!   instances in order, recursively; a repeat with no instance left reads as unanswered.
//!   Malformed layouts are [`DocError`]s naming the key path (`answers.members#ID._order`): an
//!   instance that is not a map, a missing or non-finite or non-numeric `_order`, a `#` key
//!   with an empty repeat name or id or an id holding `#` or `/`, a name holding both a scalar
//!   and instances, repeats nested more than 32 deep.
//! - **Conflicts** inside instances are listed like top-level ones, with
//!   [`Conflict::question`] the path `REPEAT#ID/QUESTION` (nested `A#ID/B#ID2/QUESTION`), which
//!   [`ResponseDoc::resolve`] and [`ResponseDoc::answer`] accept. A list write that leaves a
//!   conflicted field at its shown value does not resolve it.
//!
//! **When schema 2 is written.** A document gets `schema` 2 in the change that stores its
//! first instance (at create, or by the edit that adds it), and keeps it. A document without
//! instances stays schema 1, so builds that only read schema 1 (which would misread instances
//! as malformed answers) go on reading every document that has none, and refuse the others
//! with [`DocError::UnsupportedSchema`]. Readers accept schemas 1 and 2; the schema-1 layout
//! is exactly schema 2 without instance keys. At the top level `_order` is an ordinary question
//! name, as in schema 1.
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
//! two replicas would hold two different `answers` maps under one key. (Fresh repeat instance
//! ids are the one thing drawn from the operating system's random generator.)
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
mod fresh;
mod repeat;
mod response;
mod scalar;
mod status;
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
pub use change::{ChangeInfo, map_keys};
pub use error::DocError;
pub use repeat::assign_instance_ids;
pub use response::{
    Conflict, ConflictValue, NewResponse, Readable, ResponseDoc, ResponseMeta, Status,
};
pub use survey_doc::{PublishedVersion, SurveyDoc, SurveyMeta};

/// The layout version written into the `schema` key of survey documents and of response
/// documents without repeat instances, which readers of schema 1 can still read.
pub const SCHEMA_VERSION: i64 = 1;

/// The layout version of a response document once it holds a repeat instance; the newest
/// response layout this build reads.
pub const RESPONSE_SCHEMA_REPEATS: i64 = 2;
