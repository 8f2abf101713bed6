//! Helpers shared by the integration tests that read the shared real-data
//! corpus: finding it (with one SKIP/CI rule for all of them, also used for
//! other missing prerequisites), listing its JSON documents, and reading a
//! file with its path in the panic message.

// Each test binary compiles its own copy of this module and uses only some of
// the helpers; the rest would otherwise warn as dead code in that binary.
#![allow(dead_code)]

pub mod engine;
pub mod serve;
pub mod stream;

use std::io::Write;
use std::path::{Path, PathBuf};

/// The shared `data/` directory, or `None` after a loud SKIP. Under `CI=true`
/// the corpus must be present, so its absence is a failure there.
pub fn shared_data() -> Option<PathBuf> {
    if let Some(dir) = recheck::samples::shared_data_dir() {
        return Some(dir);
    }
    skip(
        "shared corpus not found: set RECHECK_SHARED_DIR to the directory holding data/ \
         (e.g. RECHECK_SHARED_DIR=/work/shared)",
    );
    None
}

/// A loud SKIP line for something a test needs and does not have (data, a
/// service: `msg` names the variable to set); under `CI=true` a failure.
pub fn skip(msg: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{msg} (CI=true: what a test needs must be there)"
    );
    // Straight to the stderr handle: the harness captures `eprintln!` of a
    // passing test, and a skip must be seen. One write, so that parallel
    // tests do not interleave their lines.
    let line = format!("\n!!!!! SKIP: {msg} !!!!!\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Every `.json` file under `dir`, recursively, sorted.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    json_files_skipping(dir, &[])
}

/// Every `.json` file under `dir`, recursively, sorted, not descending into
/// folders with one of the `skipped` names (e.g. `schema`: JSON schemas that
/// sit beside the documents but are not documents).
pub fn json_files_skipping(dir: &Path, skipped: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
                .path();
            if path.is_dir() {
                if !path
                    .file_name()
                    .is_some_and(|n| skipped.iter().any(|s| n == *s))
                {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The bytes of `path`, panicking with the path on failure.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
