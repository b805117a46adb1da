//! ONNX Runtime, loaded once per process from its shared library, and a watchdog that
//! stops any inference running past its deadline.
//!
//! The library is looked for where an operator or `make` puts it, in this order:
//! `ORT_DYLIB_PATH` (ONNX Runtime's own variable), `libonnxruntime.so*` beside the
//! executable or in `../lib/` of it (the image), the `onnxruntime` wheel in a
//! `.tools/venv` of the working directory or a parent, or of a parent of the executable
//! (what `make` installs), then the system's library path. The first outcome is kept: a missing library is reported, never retried
//! into a half-initialized runtime.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use ort::{environment::Environment, session::RunOptions};

/// The variable that names ONNX Runtime's shared library (ONNX Runtime's own name for it).
pub const LIBRARY_VAR: &str = "ORT_DYLIB_PATH";

/// The oldest ONNX Runtime this build can drive.
pub const OLDEST_VERSION: &str = "1.17";

/// How long one inference call may run before it is stopped, by default: long enough for
/// a batch of [`super::BATCH_ROWS`] rows through a large ensemble, short enough that a
/// graph that loops does not hold a stage or a server thread.
pub const RUN_DEADLINE: Duration = Duration::from_secs(30);

static DEADLINE_MS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(RUN_DEADLINE.as_millis() as u64);

/// The deadline of one inference call in this process.
pub fn run_deadline() -> Duration {
    Duration::from_millis(DEADLINE_MS.load(Ordering::Relaxed))
}

/// Sets the deadline of every later inference call in this process (tests shorten it).
pub fn set_run_deadline(after: Duration) {
    DEADLINE_MS.store(after.as_millis().max(1) as u64, Ordering::Relaxed);
}

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process's ONNX Runtime environment, loading the library on first use; the error
/// says where it was looked for and how to provide it.
pub fn environment() -> Result<&'static Environment, String> {
    ENVIRONMENT
        .get_or_init(|| {
            let path = library()?;
            let builder = ort::init_from(&path).map_err(|e| {
                format!(
                    "ONNX Runtime at {} could not be loaded: {e} (ONNX models need ONNX Runtime {OLDEST_VERSION} or newer)",
                    path.display()
                )
            })?;
            builder
                .with_name("tollgate")
                .with_telemetry(false)
                .build()
                .map_err(|e| format!("ONNX Runtime at {} did not start: {e}", path.display()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Where ONNX Runtime's shared library is, as the module comment says.
pub fn library() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(LIBRARY_VAR).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{LIBRARY_VAR} is {}, which is not a file; point it at libonnxruntime.so",
                path.display()
            ))
        };
    }
    let mut places: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        places.push(dir.join("../lib"));
        places.push(dir);
    }
    if let Some(found) = places.iter().find_map(|d| shared_library_in(d)) {
        return Ok(found);
    }
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    for start in starts.iter().flatten() {
        for dir in start.ancestors() {
            if let Some(found) = in_venv(&dir.join(".tools/venv")) {
                return Ok(found);
            }
        }
    }
    // Last, the system's library path (ldconfig, LD_LIBRARY_PATH): a bare name loads from
    // there, and a wrong guess fails with the loader's message.
    if system_has_library() {
        return Ok(PathBuf::from("libonnxruntime.so"));
    }
    Err(format!(
        "ONNX models need ONNX Runtime's shared library (libonnxruntime.so, {OLDEST_VERSION} or newer) and none was found: set {LIBRARY_VAR} to it. `pip install onnxruntime` ships it as site-packages/onnxruntime/capi/libonnxruntime.so.*, and `make tools` installs one under .tools/venv"
    ))
}

/// A `libonnxruntime.so*` file in `dir`.
fn shared_library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The library of the `onnxruntime` wheel installed in the venv at `venv`.
fn in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/onnxruntime/capi"))
        .find_map(|capi| shared_library_in(&capi))
}

fn system_has_library() -> bool {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.extend(
        [
            "/usr/lib",
            "/usr/local/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
        ]
        .map(PathBuf::from),
    );
    dirs.iter().any(|d| d.join("libonnxruntime.so").exists())
}

/// Inference calls in flight, each with its deadline.
#[derive(Default)]
struct Watched {
    next: u64,
    calls: Vec<(u64, Instant, Arc<RunOptions>, Arc<AtomicBool>)>,
}

static WATCHED: OnceLock<Mutex<Watched>> = OnceLock::new();

/// How often the watchdog looks at the calls in flight.
const WATCH_EVERY: Duration = Duration::from_millis(250);

fn watched() -> &'static Mutex<Watched> {
    WATCHED.get_or_init(|| {
        // One thread for the process; it only wakes to compare deadlines with the clock.
        let spawned = std::thread::Builder::new()
            .name("onnx-watchdog".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(WATCH_EVERY);
                    let Some(watched) = WATCHED.get() else { continue };
                    let now = Instant::now();
                    let Ok(mut w) = watched.lock() else { return };
                    w.calls.retain(|(_, deadline, options, fired)| {
                        if *deadline > now {
                            return true;
                        }
                        fired.store(true, Ordering::Relaxed);
                        if let Err(e) = options.terminate() {
                            tracing::warn!(error = %e, "an ONNX inference past its deadline could not be stopped");
                        }
                        false
                    });
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no ONNX watchdog thread: inference has no deadline");
        }
        Mutex::new(Watched::default())
    })
}

/// One inference call under the watchdog: its run options, and whether the watchdog
/// stopped it. Dropping it takes the call off the watch.
pub struct Deadline {
    id: u64,
    /// The options to run with; the watchdog terminates them at the deadline.
    pub options: Arc<RunOptions>,
    fired: Arc<AtomicBool>,
}

impl Deadline {
    /// Watches a new call for `after`.
    pub fn start(after: Duration) -> Result<Deadline, ort::Error> {
        let options = Arc::new(RunOptions::new()?);
        let fired = Arc::new(AtomicBool::new(false));
        let mut w = watched().lock().unwrap_or_else(|p| p.into_inner());
        w.next += 1;
        let id = w.next;
        w.calls
            .push((id, Instant::now() + after, options.clone(), fired.clone()));
        Ok(Deadline { id, options, fired })
    }

    /// Whether the watchdog stopped the call.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Ok(mut w) = watched().lock() {
            w.calls.retain(|(id, ..)| *id != self.id);
        }
    }
}
