//! The code object store, which this module owns: snapshots of a spec's folder and ONNX
//! models trained elsewhere, each named by the sha256 of its bytes, so a name says what it
//! holds, a second upload of the same bytes is a no-op, and a reader checks what it got.
//! CI and operators put here; the trainer, gate and promoter read.

use tokio::io::AsyncReadExt;

use tollgate_bus::{Bus, BusError};

/// What the code store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeObject {
    /// A gzipped tar of a spec's folder (`tollgate-usercode`'s snapshot).
    Snapshot,
    /// An ONNX model uploaded with a trigger (`publish --model FILE.onnx`).
    Model,
}

impl CodeObject {
    /// The object's name for `digest`.
    pub fn name(self, digest: &str) -> String {
        match self {
            CodeObject::Snapshot => format!("snapshot/{digest}.tar.gz"),
            CodeObject::Model => format!("model/{digest}.onnx"),
        }
    }

    fn what(self) -> &'static str {
        match self {
            CodeObject::Snapshot => "code snapshot",
            CodeObject::Model => "uploaded model",
        }
    }
}

/// Why an object of the code store could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// No object of that digest was put.
    #[error(
        "{what} {digest} is not in the code store; publish the trigger again with the CLI, which uploads it"
    )]
    Missing {
        /// Snapshot or model.
        what: &'static str,
        /// The digest asked for.
        digest: String,
    },
    /// The digest is not a sha256.
    #[error("{0:?} is not a sha256 digest")]
    BadDigest(String),
    /// The bytes do not hash to their name.
    #[error(
        "{what} {expected} holds other bytes (sha256 {actual}); it was tampered with or corrupted"
    )]
    Tampered {
        /// Snapshot or model.
        what: &'static str,
        /// The digest asked for.
        expected: String,
        /// The digest of the bytes read.
        actual: String,
    },
    /// Larger than the caller accepts.
    #[error("{what} {digest} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Snapshot or model.
        what: &'static str,
        /// Its digest.
        digest: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl CodeError {
    /// Whether trying again may help (NATS failed, not the object).
    pub fn is_transient(&self) -> bool {
        matches!(self, CodeError::Bus(_))
    }
}

/// The code store.
pub struct Code<'a>(pub(crate) &'a Bus);

/// sha256 of `bytes`, hex.
pub fn digest(bytes: &[u8]) -> String {
    tollgate_spec::sha256_hex(bytes)
}

fn is_digest(d: &str) -> bool {
    d.len() == 64
        && d.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Code<'_> {
    /// Stores `bytes` as a `kind` named by their digest (once: the same bytes again are
    /// not sent twice); returns the digest.
    pub async fn put(&self, kind: CodeObject, bytes: &[u8]) -> Result<String, BusError> {
        let digest = digest(bytes);
        let name = kind.name(&digest);
        let store = self.0.code_store();
        if let Ok(info) = store.info(&name).await
            && !info.deleted
            && info.size == bytes.len()
        {
            return Ok(digest);
        }
        let mut reader = bytes;
        store
            .put(name.as_str(), &mut reader)
            .await
            .map_err(|e| BusError::store(format!("storing {} {digest}", kind.what()), e))?;
        Ok(digest)
    }

    /// Whether a `kind` named `digest` was put (not checked against its bytes: a reader
    /// does that).
    pub async fn exists(&self, kind: CodeObject, digest: &str) -> Result<bool, CodeError> {
        use async_nats::jetstream::object_store::InfoErrorKind;
        if !is_digest(digest) {
            return Err(CodeError::BadDigest(digest.into()));
        }
        match self.0.code_store().info(kind.name(digest)).await {
            Ok(info) => Ok(!info.deleted),
            Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(false),
            Err(e) => {
                Err(BusError::store(format!("looking up {} {digest}", kind.what()), e).into())
            }
        }
    }

    /// The `kind` named `digest`, checked against its name, refused over `limit` bytes.
    pub async fn get(
        &self,
        kind: CodeObject,
        digest: &str,
        limit: usize,
    ) -> Result<Vec<u8>, CodeError> {
        use async_nats::jetstream::object_store::{GetErrorKind, InfoErrorKind};
        if !is_digest(digest) {
            return Err(CodeError::BadDigest(digest.into()));
        }
        let (what, name) = (kind.what(), kind.name(digest));
        let missing = || CodeError::Missing {
            what,
            digest: digest.into(),
        };
        let store = self.0.code_store();
        let info = match store.info(&name).await {
            Ok(info) if !info.deleted => info,
            Ok(_) => return Err(missing()),
            Err(e) if e.kind() == InfoErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(BusError::store(format!("looking up {what} {digest}"), e).into()),
        };
        if info.size > limit {
            return Err(CodeError::TooLarge {
                what,
                digest: digest.into(),
                size: info.size,
                limit,
            });
        }
        let mut object = match store.get(&name).await {
            Ok(o) => o,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(BusError::store(format!("reading {what} {digest}"), e).into()),
        };
        let mut bytes = Vec::with_capacity(info.size);
        (&mut object)
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| BusError::store(format!("reading {what} {digest}"), e))?;
        let actual = self::digest(&bytes);
        if actual != digest {
            return Err(CodeError::Tampered {
                what,
                expected: digest.into(),
                actual,
            });
        }
        Ok(bytes)
    }
}
