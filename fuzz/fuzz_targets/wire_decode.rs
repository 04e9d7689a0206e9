//! Every sync message type decoded from the input with its own limits; whatever decodes must
//! re-encode and decode equal, and no decode may hold more heap than linear in the input.
#![no_main]

use fieldsync_fuzz::{CountingAlloc, peak_heap, violated};
use fieldsync_protocol::fuzz_targets::{alloc_budget, wire_decode};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(|data: &[u8]| {
    let (result, peak) = peak_heap(|| wire_decode(data));
    if let Err(why) = &result {
        violated("wire_decode", why);
    }
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *VERBOSE.get_or_init(|| std::env::var_os("FIELDSYNC_FUZZ_VERBOSE").is_some()) {
        eprintln!(
            "wire_decode: {} bytes, peak heap {peak}, {result:?}",
            data.len()
        );
    }
    if peak > alloc_budget(data.len()) {
        violated(
            "wire_decode",
            &format!(
                "{} input bytes held {peak} bytes of heap at once",
                data.len()
            ),
        );
    }
});
