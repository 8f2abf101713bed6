//! Seeded crash points at named boundaries of the write path, so the crash
//! test (`tests/crash.rs`) can stop the real binary exactly where a power cut
//! would hurt most and check that a restart loses and duplicates nothing.
//!
//! `RECHECK_FAILPOINTS=after_ledger_commit=2,mid_dispatch=1` aborts the
//! process (like `kill -9`: no destructors, no flushing, no cleanup) on the
//! 2nd hit of `after_ledger_commit` or the 1st of `mid_dispatch`. Before it
//! aborts it writes one line `failpoint NAME hit N: aborting` on stderr so a
//! test can count which one fired. When the variable is unset a hit is one
//! relaxed atomic load.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;

/// The named boundaries, in write-path order.
pub const NAMES: [&str; 5] = [
    AFTER_INPUT_APPEND,
    MID_WINDOW,
    AFTER_LEDGER_COMMIT,
    AFTER_JOB_WRITE,
    MID_DISPATCH,
];

/// The input log holds the batch; the engine has applied none of it.
pub const AFTER_INPUT_APPEND: &str = "after_input_append";
/// Some records of a window are applied to the engine, its `WindowClosed`
/// is not (hit once per applied record).
pub const MID_WINDOW: &str = "mid_window";
/// The window commit returned. Ledger entry, jobs and the planner's cursor
/// are one transaction, so "after the ledger commit, before the cursor
/// moves" is this point: what has not moved yet is everything outside that
/// transaction (the pipeline's in-memory head, the dispatcher).
pub const AFTER_LEDGER_COMMIT: &str = "after_ledger_commit";
/// The dispatcher read planned jobs from the outbox and enqueued none yet.
pub const AFTER_JOB_WRITE: &str = "after_job_write";
/// The dispatcher enqueued a job and has not marked it dispatched (hit once
/// per enqueued job).
pub const MID_DISPATCH: &str = "mid_dispatch";

/// The environment variable that arms failpoints.
pub const ENV: &str = "RECHECK_FAILPOINTS";

const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static ARMED: OnceLock<Armed> = OnceLock::new();

struct Armed {
    /// Failpoint name → the hit that aborts (1-based).
    at: BTreeMap<String, u64>,
    hits: BTreeMap<String, AtomicU64>,
    warned: AtomicBool,
}

fn armed() -> &'static Armed {
    ARMED.get_or_init(|| {
        let spec = std::env::var(ENV).unwrap_or_default();
        let mut at = BTreeMap::new();
        let mut bad = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, n) = part.split_once('=').unwrap_or((part, "1"));
            match n.trim().parse::<u64>() {
                Ok(n) if n > 0 && NAMES.contains(&name.trim()) => {
                    at.insert(name.trim().to_string(), n);
                }
                _ => bad.push(part.to_string()),
            }
        }
        if !bad.is_empty() {
            // A typo must not silently turn a crash test into a clean run.
            eprintln!(
                "error: {ENV}: cannot use {bad:?} (expected NAME=N with N >= 1, NAME one of {NAMES:?})"
            );
            std::process::exit(2);
        }
        let hits = at.keys().map(|k| (k.clone(), AtomicU64::new(0))).collect();
        Armed {
            at,
            hits,
            warned: AtomicBool::new(false),
        }
    })
}

/// Pass the boundary `name` (one of [`NAMES`]); aborts the process when
/// [`ENV`] says this is the hit to die on.
#[inline]
pub fn hit(name: &'static str) {
    match STATE.load(Ordering::Relaxed) {
        OFF => {}
        UNKNOWN => {
            let on = std::env::var_os(ENV).is_some_and(|v| !v.is_empty());
            STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
            if on {
                hit_armed(name);
            }
        }
        _ => hit_armed(name),
    }
}

#[cold]
fn hit_armed(name: &'static str) {
    let armed = armed();
    if !armed.warned.swap(true, Ordering::Relaxed) {
        tracing::warn!(failpoints = ?armed.at, "failpoints armed");
    }
    let (Some(at), Some(hits)) = (armed.at.get(name), armed.hits.get(name)) else {
        return;
    };
    let n = hits.fetch_add(1, Ordering::Relaxed) + 1;
    if n == *at {
        let line = format!("failpoint {name} hit {n}: aborting\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        std::process::abort();
    }
}
