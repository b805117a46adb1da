//! A snapshot of the spec's folder: every file git would track there (`.gitignore`
//! respected, and `.tollgateignore` with the same syntax), without `.git/`, packed into a
//! gzipped tar whose bytes depend only on the files' paths, contents and executable bits,
//! and named by their sha256. Unpacking checks the digest and refuses paths that leave the
//! target directory, links and devices, and archives that grow past the limits.

use std::{
    io::{Read, Write},
    path::{Component, Path, PathBuf},
};

/// The most bytes of files a snapshot may hold, unpacked.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The most files a snapshot may hold.
pub const MAX_FILES: usize = 10_000;
/// The name of the ignore file beside `.gitignore` that only Tollgate reads.
pub const IGNORE_FILE: &str = ".tollgateignore";

/// Why a folder could not be packed or a snapshot unpacked.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The folder holds more than a snapshot may.
    #[error(
        "the spec's folder {dir} holds {what}, over the limit of a code snapshot ({limit}); the largest files: {largest}. Exclude data and build outputs with {IGNORE_FILE} (the syntax of .gitignore)"
    )]
    TooLarge {
        /// The folder.
        dir: String,
        /// How much it holds.
        what: String,
        /// The limit.
        limit: String,
        /// The largest files, with their sizes.
        largest: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The folder could not be walked.
    #[error("cannot list {dir}: {reason}")]
    Walk {
        /// The folder.
        dir: String,
        /// What went wrong.
        reason: String,
    },
    /// The bytes do not hash to the snapshot's name.
    #[error("code snapshot digest mismatch: expected {expected}, got {actual}")]
    Digest {
        /// The digest asked for.
        expected: String,
        /// The digest of the bytes.
        actual: String,
    },
    /// The archive is not one this module writes.
    #[error("code snapshot is not valid: {0}")]
    Invalid(String),
}

/// A packed folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The gzipped tar.
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`, hex: the snapshot's name and the runs' code digest.
    pub digest: String,
    /// Files packed.
    pub files: usize,
    /// Their bytes, unpacked.
    pub size: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// sha256 of `bytes`, hex.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// The files of `dir` a snapshot holds, relative and sorted, with their sizes.
pub fn files(dir: &Path) -> Result<Vec<(PathBuf, u64)>, SnapshotError> {
    let walk = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .parents(false)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    let mut out = Vec::new();
    for entry in walk {
        let entry = entry.map_err(|e| SnapshotError::Walk {
            dir: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_file() {
            continue;
        }
        let path = entry.path();
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        if let Ok(relative) = path.strip_prefix(dir) {
            out.push((relative.to_path_buf(), size));
        }
    }
    out.sort();
    Ok(out)
}

/// Packs the files of `dir` (see the module comment), refusing a folder over the limits
/// with its largest files named.
pub fn pack(dir: &Path) -> Result<Snapshot, SnapshotError> {
    let listed = files(dir)?;
    let size: u64 = listed.iter().map(|(_, s)| s).sum();
    if size > MAX_BYTES || listed.len() > MAX_FILES {
        let mut largest = listed.clone();
        largest.sort_by_key(|(_, s)| std::cmp::Reverse(*s));
        let largest: Vec<String> = largest
            .iter()
            .take(5)
            .map(|(p, s)| format!("{} ({})", p.display(), mib(*s)))
            .collect();
        let (what, limit) = if listed.len() > MAX_FILES {
            (
                format!("{} files", listed.len()),
                format!("{MAX_FILES} files"),
            )
        } else {
            (mib(size), mib(MAX_BYTES))
        };
        return Err(SnapshotError::TooLarge {
            dir: dir.display().to_string(),
            what,
            limit,
            largest: largest.join(", "),
        });
    }
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (relative, _) in &listed {
        let path = dir.join(relative);
        let mut file = std::fs::File::open(&path).map_err(io(&path))?;
        let meta = file.metadata().map_err(io(&path))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(meta.len());
        header.set_mode(if is_executable(&meta) { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, relative, &mut file)
            .map_err(io(&path))?;
    }
    let gz = tar.into_inner().map_err(io(dir))?;
    let bytes = gz.finish().map_err(io(dir))?;
    Ok(Snapshot {
        digest: digest(&bytes),
        bytes,
        files: listed.len(),
        size,
    })
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

/// Unpacks a snapshot into `into` (created if needed) after checking that its bytes hash
/// to `expected`; returns the number of files written.
pub fn unpack(bytes: &[u8], expected: &str, into: &Path) -> Result<usize, SnapshotError> {
    let actual = digest(bytes);
    if actual != expected {
        return Err(SnapshotError::Digest {
            expected: expected.into(),
            actual,
        });
    }
    std::fs::create_dir_all(into).map_err(io(into))?;
    let invalid = |m: String| SnapshotError::Invalid(m);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let (mut files, mut written) = (0usize, 0u64);
    for entry in archive.entries().map_err(|e| invalid(e.to_string()))? {
        let mut entry = entry.map_err(|e| invalid(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| invalid(e.to_string()))?
            .into_owned();
        let inside = path.components().all(|c| matches!(c, Component::Normal(_)));
        if !inside || path.as_os_str().is_empty() {
            return Err(invalid(format!(
                "{} leaves the snapshot's folder",
                path.display()
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(invalid(format!("{} is not a regular file", path.display())));
        }
        files += 1;
        if files > MAX_FILES {
            return Err(invalid(format!("more than {MAX_FILES} files")));
        }
        let target = into.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let mut out = std::fs::File::create(&target).map_err(io(&target))?;
        let budget = MAX_BYTES.saturating_sub(written) + 1;
        let copied =
            std::io::copy(&mut (&mut entry).take(budget), &mut out).map_err(io(&target))?;
        written += copied;
        if written > MAX_BYTES {
            return Err(invalid(format!(
                "it unpacks to more than {}",
                mib(MAX_BYTES)
            )));
        }
        out.flush().map_err(io(&target))?;
        if mode & 0o111 != 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .map_err(io(&target))?;
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
