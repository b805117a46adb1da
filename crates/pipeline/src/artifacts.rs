//! The model artifacts object store, which this module owns: the trainer puts an
//! artifact under a name made from the model and run, the registry reads it back.

use tokio::io::AsyncReadExt;
use tollgate_proto::RunId;

use tollgate_bus::{Bus, BusError};

/// The artifacts object store.
pub struct Artifacts<'a>(pub(crate) &'a Bus);

/// The object name of the artifact a run trained, by its bytes' `digest`: a redelivered
/// run that trains other bytes adds a new object and never replaces one (the trainer may
/// add artifacts, not purge them).
pub fn name(model: &str, run: &RunId, digest: &str) -> String {
    let short = digest.get(..16).unwrap_or(digest);
    format!("{model}/{run}/{short}.tgm")
}

impl Artifacts<'_> {
    /// Stores an artifact under `name`, once: the same name again is not rewritten.
    pub async fn put(&self, name: &str, bytes: &[u8]) -> Result<(), BusError> {
        if let Ok(info) = self.0.artifacts_store().info(name).await
            && !info.deleted
            && info.size == bytes.len()
        {
            return Ok(());
        }
        let mut reader = bytes;
        self.0
            .artifacts_store()
            .put(name, &mut reader)
            .await
            .map(|_| ())
            .map_err(|e| BusError::store(format!("storing artifact {name}"), e))
    }

    /// The size of a stored artifact; `None` when there is none. An error means the store
    /// could not say (NATS unreachable, a cluster electing a leader): worth asking again.
    pub async fn size(&self, name: &str) -> Result<Option<usize>, BusError> {
        use async_nats::jetstream::object_store::InfoErrorKind;
        match self.0.artifacts_store().info(name).await {
            Ok(info) => Ok(Some(info.size)),
            Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(BusError::store(format!("looking up artifact {name}"), e)),
        }
    }

    /// A stored artifact's bytes.
    pub async fn get(&self, name: &str) -> Result<Vec<u8>, BusError> {
        let err = |e: Box<dyn std::error::Error + Send + Sync>| {
            BusError::store(format!("reading artifact {name}"), e)
        };
        let mut object = self
            .0
            .artifacts_store()
            .get(name)
            .await
            .map_err(|e| err(e.into()))?;
        let mut data = Vec::new();
        object
            .read_to_end(&mut data)
            .await
            .map_err(|e| err(e.into()))?;
        Ok(data)
    }
}
