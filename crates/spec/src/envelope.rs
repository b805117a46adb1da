//! The envelope of a model artifact file: the 8 bytes `TOLLGATE`, a little-endian `u16`
//! format version, a little-endian `u32` body length, the body, then a trailer.
//!
//! The digest covers the header and the body, not the trailer, which holds what differs
//! between two trainings of the same inputs (the training time). It lives here, beside
//! the sha256 naming, so the registry can check an artifact without the model code.

/// Leading bytes of every artifact.
pub const MAGIC: &[u8; 8] = b"TOLLGATE";
/// The format version this build writes.
pub const FORMAT_VERSION: u16 = 3;
/// The format versions this build reads: version 2 (built-in models only) and the current.
pub const READS: [u16; 2] = [2, FORMAT_VERSION];
/// Bytes before the body: magic, format version, body length.
const HEADER: usize = 14;

/// Why bytes are not a readable artifact envelope.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not a Tollgate artifact at all.
    #[error("not a Tollgate model artifact (bad magic bytes)")]
    NotAnArtifact,
    /// Written by another format version.
    #[error(
        "artifact format version {found} is not supported by this build (it reads versions 2 and {FORMAT_VERSION})"
    )]
    Version {
        /// The version found in the file.
        found: u16,
    },
    /// Shorter than its header says, or too large to write.
    #[error("artifact is corrupt: {0}")]
    Corrupt(String),
}

/// Wraps `body` and `trailer` in the current envelope.
pub fn seal(body: &[u8], trailer: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let length = u32::try_from(body.len())
        .map_err(|_| EnvelopeError::Corrupt("artifact body is over 4 GiB".into()))?;
    let mut out = Vec::with_capacity(HEADER + body.len() + trailer.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(trailer);
    Ok(out)
}

/// The format version, the body and the trailer of an artifact's bytes, after checking
/// the header.
pub fn open(bytes: &[u8]) -> Result<(u16, &[u8], &[u8]), EnvelopeError> {
    if bytes.len() < 10 || &bytes[..8] != MAGIC {
        return Err(EnvelopeError::NotAnArtifact);
    }
    let found = u16::from_le_bytes([bytes[8], bytes[9]]);
    if !READS.contains(&found) {
        return Err(EnvelopeError::Version { found });
    }
    let length = bytes
        .get(10..HEADER)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| EnvelopeError::Corrupt("truncated header".into()))?;
    let end = HEADER.saturating_add(length as usize);
    if bytes.len() < end {
        return Err(EnvelopeError::Corrupt(format!(
            "truncated: the body should be {length} bytes, {} are there",
            bytes.len() - HEADER
        )));
    }
    Ok((found, &bytes[HEADER..end], &bytes[end..]))
}

/// The digest of an artifact's bytes: hex sha256 of its header and body, so retraining
/// the same inputs gives the same digest. Bytes that are not an artifact of this format
/// are hashed whole.
pub fn digest(bytes: &[u8]) -> String {
    let covered = match open(bytes) {
        Ok((_, body, _)) => &bytes[..HEADER + body.len()],
        Err(_) => bytes,
    };
    crate::sha256_hex(covered)
}
