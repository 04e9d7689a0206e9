//! fieldsync's shared core: the survey model and its validation, the Automerge documents,
//! the CBOR wire messages and the encryption envelope. It performs no I/O: no files, no
//! sockets, no database, no clock (callers pass the time in).
#![forbid(unsafe_code)]

pub mod answer;
pub mod api;
pub mod cbor;
pub mod crypto;
pub mod document;
pub mod survey;
pub mod wire;

pub use answer::{Answer, Answers};
