//! Support for the fuzz targets in `fuzz_targets/`: the in-process push harness ([`push`],
//! shared with the replay test), a counting allocator, and a panic hook that lets an expected
//! automerge panic unwind. Each target is a thin wrapper over a function of
//! `fieldsync_protocol::fuzz_targets` or of [`push`], which the test suite runs on the
//! committed corpus (`server/tests/server/fuzz_replay.rs`).

pub mod push;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use fieldsync_server::{AppState, StateConfig};

/// A property failed: the panic message says which, and libFuzzer saves the input.
pub fn violated(target: &str, why: &str) -> ! {
    panic!("fieldsync fuzz property violated ({target}): {why}")
}

/// libFuzzer's panic hook aborts on every panic, before any `catch_unwind` can see it. This
/// wraps it so that a panic inside `fuzz_targets::catch_automerge_panic` (automerge on crafted
/// bytes: expected) unwinds silently, and every other panic still aborts as a finding.
pub fn let_expected_panics_unwind() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let fatal = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !fieldsync_protocol::fuzz_targets::expecting_panic() {
                fatal(info);
            }
        }));
    });
}

/// A global allocator that counts the bytes live on the heap and their peak.
#[derive(Debug)]
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

/// Run `f` and return what it returned with the most heap it held at once beyond what was
/// live before (meaningful only where [`CountingAlloc`] is the global allocator).
pub fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// Which push target an input is for.
#[derive(Debug, Clone, Copy)]
pub enum PushInput {
    /// The input is the whole request body (`push_path`).
    Body,
    /// The input is the change bytes of a well-formed push (`push_changes`).
    Changes,
}

/// A canary push (and pull) after this many inputs.
pub const CANARY_EVERY: u64 = 100;

struct PushFuzz {
    rt: tokio::runtime::Runtime,
    state: AppState,
    target: push::Target,
    _dir: PathBuf,
}

/// The fuzzed server: built on first use, in `fuzz/target/state/<pid>` (directories of
/// processes that are gone are removed).
fn push_fuzz() -> &'static Mutex<PushFuzz> {
    static STATE: OnceLock<Mutex<PushFuzz>> = OnceLock::new();
    STATE.get_or_init(|| {
        let exe = push::server_bin();
        assert!(
            exe.is_file(),
            "the worker binary {} is missing: run `cargo build -p fieldsync-server` in the \
             workspace, or set FIELDSYNC_SERVER_BIN",
            exe.display()
        );
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/state"));
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                let pid = e.file_name().to_string_lossy().into_owned();
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
        let region = "eu-central";
        let state = rt
            .block_on(AppState::open(StateConfig {
                database: fieldsync_server::storage::Database::Sqlite(dir.join("fieldsync.sqlite")),
            master_key: dir.join("master.key"),
            worker_exe: exe.clone(),
            worker_limits: push::worker_limits(),
                settings: fieldsync_server::settings::Settings::for_region(region),
            }))
            .unwrap_or_else(|e| panic!("open state: {e}"));
        let target = rt.block_on(push::setup(&state, region, 256));
        eprintln!(
            "fieldsync fuzz: server state in {}, workers {}, survey {}",
            dir.display(),
            exe.display(),
            target.survey
        );
        Mutex::new(PushFuzz {
            rt,
            state,
            target,
            _dir: dir,
        })
    })
}

/// One input of `push_path` or `push_changes`: pushed, checked, every `CANARY_EVERY` inputs
/// followed by the known-good push.
pub fn fuzz_push(kind: PushInput, data: &[u8]) {
    let name = match kind {
        PushInput::Body => "push_path",
        PushInput::Changes => "push_changes",
    };
    let mut guard = push_fuzz().lock().unwrap_or_else(|p| p.into_inner());
    let PushFuzz {
        rt, state, target, ..
    } = &mut *guard;
    let result = rt.block_on(async {
        match kind {
            PushInput::Body => target.push_body(state, data).await,
            PushInput::Changes => target.push_changes(state, data).await,
        }
    });
    if let Err(why) = result {
        violated(name, &why);
    }
    if target.tally.inputs % CANARY_EVERY == 0 {
        if let Err(why) = rt.block_on(target.canary(state)) {
            violated(name, &why);
        }
    }
    if target.tally.inputs % 5000 == 0 {
        eprintln!("fieldsync fuzz {name}: {:?}", target.tally);
    }
}
