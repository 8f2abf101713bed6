//! Where data lives: the bundled sample set (`samples/` in the repo, used by
//! `recheck demo`) and the shared corpus of real public data, found by one
//! rule: `RECHECK_SHARED_DIR` if set, else `shared/` beside the workspace root.

use std::path::PathBuf;

/// Root of the repository this binary was built from.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled sample set shipped inside the repo.
pub fn bundled_dir() -> PathBuf {
    workspace_root().join("samples")
}

/// The shared corpus of real public data, if present.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RECHECK_SHARED_DIR") {
        return Some(PathBuf::from(dir));
    }
    let beside = workspace_root().parent()?.join("shared");
    beside.is_dir().then_some(beside)
}

/// `<shared>/data`, if present.
pub fn shared_data_dir() -> Option<PathBuf> {
    shared_dir()
        .map(|d| d.join("data"))
        .filter(|d| d.is_dir())
}
