//! The input is the body of `POST /v1/sync/push`, sent through the real router with a real
//! worker pool (see `fieldsync_fuzz::push`).
#![no_main]

use fieldsync_fuzz::{PushInput, fuzz_push};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_push(PushInput::Body, data));
