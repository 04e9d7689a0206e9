//! `ChangeInfo::decode`, the parse the server's sandboxed worker runs on every pushed change,
//! here in-process: a panic inside automerge is expected (the worker catches it the same way)
//! and unwinds; only a broken property of ours is a finding. automerge also aborts on some
//! inputs (allocation failure) or runs for minutes: those are automerge findings that the
//! sandbox absorbs; see the README's "Fuzzing" section for how this target is run.
#![no_main]

use fieldsync_fuzz::{let_expected_panics_unwind, violated};
use fieldsync_protocol::fuzz_targets::change_info;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let_expected_panics_unwind();
    if let Err(why) = change_info(data) {
        violated("change_info", &why);
    }
});
