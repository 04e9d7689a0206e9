//! Helpers for the end-to-end tests: build and find the real binaries, start
//! `fieldsync-server` on loopback, drive the `fieldsync` CLI in its own client home, and read
//! fixtures and exports; put a fault-injecting proxy between client and server, and draw
//! seeded random choices; run the server on SQLite or PostgreSQL. Every wait has a timeout, so a broken binary fails a test instead of
//! hanging it.

pub mod bins;
pub mod browser;
pub mod client;
pub mod data;
pub mod databases;
pub mod process;
pub mod proxy;
pub mod rng;
pub mod server;
pub mod smtp;
pub mod tty;
pub mod web;
pub mod world;

pub use bins::{binaries, fixture, workspace_root};
pub use client::Client;
pub use databases::{Backend, backends, postgres_server};
pub use process::Output;
pub use proxy::{Fault, FaultProxy};
pub use rng::Rng;
pub use server::{Server, create_org};
pub use world::World;
