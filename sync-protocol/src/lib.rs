//! fieldsync's shared core: the survey model and its validation, the Automerge documents,
//! the CBOR wire messages and the encryption envelope. It performs no I/O: no files, no
//! sockets, no database, no clock (callers pass the time in).
#![forbid(unsafe_code)]

pub mod answer;
pub mod api;
pub mod cbor;
pub mod crypto;
pub mod document;
pub mod fuzz_targets;
pub mod media;
pub mod subject;
pub mod survey;
pub mod wire;
pub mod zone;

pub use answer::{Answer, Answers, RepeatInstance};

#[cfg(test)]
mod tests {
    /// The crate stays free of I/O stacks: both sides depend on it, and a mobile app must be
    /// able to embed it without a runtime or a database.
    #[test]
    fn depends_on_no_io_stack() {
        let manifest = include_str!("../Cargo.toml");
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .unwrap_or_default();
        for forbidden in ["tokio", "axum", "rusqlite", "reqwest", "hyper", "mio"] {
            let listed = deps
                .lines()
                .any(|l| l.trim_start().split(['=', '.', ' ']).next() == Some(forbidden));
            assert!(!listed, "sync-protocol must not depend on {forbidden}");
        }
        assert!(deps.contains("automerge"), "dependency section not found");
    }
}
