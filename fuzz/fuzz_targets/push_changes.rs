//! The input is the change bytes of a well-formed push (split at each Automerge chunk magic),
//! so every input gets past the CBOR layer to the sandbox and the materialiser.
#![no_main]

use fieldsync_fuzz::{PushInput, fuzz_push};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz_push(PushInput::Changes, data));
