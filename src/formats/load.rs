//! Reading many documents at once: single files, directory trees and zip
//! archives (the osv.dev per-ecosystem `all.zip` export). A document that
//! fails to read or parse is reported in the [`LoadReport`] and skipped; it
//! never stops the others.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{ErrorKind, FormatError};

/// The documents a path holds, as `(name, bytes)`, in a stable order (sorted
/// by name), plus the ones that could not be read.
#[derive(Debug, Default)]
pub struct RawDocuments {
    pub documents: Vec<(String, Vec<u8>)>,
    pub errors: Vec<FormatError>,
}

/// Outcome of loading documents of one kind.
#[derive(Debug)]
pub struct LoadReport<T> {
    /// `(document name, parsed value)`, sorted by document name.
    pub items: Vec<(String, T)>,
    pub errors: Vec<FormatError>,
}

impl<T> Default for LoadReport<T> {
    fn default() -> Self {
        LoadReport {
            items: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// Files we never treat as documents when walking a directory.
fn is_candidate(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') {
        return false;
    }
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json") | Some("zip")
    )
}

fn read_zip(path: &Path, out: &mut RawDocuments) {
    let display = path.display().to_string();
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            out.errors
                .push(FormatError::new(display, ".", ErrorKind::Io, e.to_string()));
            return;
        }
    };
    let mut archive = match zip::ZipArchive::new(file) {
        Ok(a) => a,
        Err(e) => {
            out.errors.push(FormatError::new(
                display,
                ".",
                ErrorKind::Io,
                format!("not a readable zip archive: {e}"),
            ));
            return;
        }
    };
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                out.errors.push(FormatError::new(
                    format!("{display}!#{i}"),
                    ".",
                    ErrorKind::Io,
                    e.to_string(),
                ));
                continue;
            }
        };
        if !entry.is_file() || !entry.name().ends_with(".json") {
            continue;
        }
        let name = format!("{display}!{}", entry.name());
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        match entry.read_to_end(&mut bytes) {
            Ok(_) => out.documents.push((name, bytes)),
            Err(e) => out
                .errors
                .push(FormatError::new(name, ".", ErrorKind::Io, e.to_string())),
        }
    }
}

fn walk(path: &Path, explicit: bool, out: &mut RawDocuments) {
    let display = path.display().to_string();
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            out.errors
                .push(FormatError::new(display, ".", ErrorKind::Io, e.to_string()));
            return;
        }
    };
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = match fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                out.errors
                    .push(FormatError::new(display, ".", ErrorKind::Io, e.to_string()));
                return;
            }
        };
        entries.sort();
        for entry in entries {
            if entry.is_dir() || is_candidate(&entry) {
                walk(&entry, false, out);
            }
        }
    } else if path.extension().and_then(|e| e.to_str()) == Some("zip") {
        read_zip(path, out);
    } else if explicit || is_candidate(path) {
        match fs::read(path) {
            Ok(bytes) => out.documents.push((display, bytes)),
            Err(e) => out
                .errors
                .push(FormatError::new(display, ".", ErrorKind::Io, e.to_string())),
        }
    }
}

/// Read every document under `paths`: a file given explicitly is read
/// whatever its extension; directories are walked for `*.json` and `*.zip`.
pub fn read_documents<P: AsRef<Path>>(paths: &[P]) -> RawDocuments {
    let mut out = RawDocuments::default();
    for p in paths {
        walk(p.as_ref(), true, &mut out);
    }
    out.documents.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Read and parse every document under `paths` with `parse`, keeping going
/// past bad documents.
pub fn load<P, T, F>(paths: &[P], mut parse: F) -> LoadReport<T>
where
    P: AsRef<Path>,
    F: FnMut(&str, &[u8]) -> Result<T, FormatError>,
{
    let raw = read_documents(paths);
    let mut report = LoadReport {
        items: Vec::with_capacity(raw.documents.len()),
        errors: raw.errors,
    };
    for (name, bytes) in raw.documents {
        match parse(&name, &bytes) {
            Ok(v) => report.items.push((name, v)),
            Err(e) => report.errors.push(e),
        }
    }
    report
}
