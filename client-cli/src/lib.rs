//! The fieldsync client core: the encrypted local store ([`store`]), the sync engine
//! ([`engine`]) and the HTTP client ([`client`]). A mobile app can embed this crate; the
//! `fieldsync` binary is a command-line interface on top of it.
#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod engine;
pub mod exit;
pub mod export_tables;
pub mod form_file;
pub mod input;
pub use fieldsync_protocol::survey::interview;
pub mod store;

use std::path::PathBuf;

/// The default client home: the platform's data directory, `fieldsync` inside it.
pub fn default_home() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("fieldsync")
}
