//! Every failing row of a failed validation, kept beside its run in the
//! `tollgate_failures` object store, which this module owns: the data-validator puts them
//! once per run (a redelivered run's same rows are not rewritten), and
//! `tollgate runs failures RUN` reads them back.

use tokio::io::AsyncReadExt;
use tollgate_proto::RunId;

use tollgate_bus::{Bus, BusError};

/// The failing-rows object store.
pub struct Failures<'a>(pub(crate) &'a Bus);

/// The object name of a run's failing rows (a Parquet file).
pub fn name(run: &RunId) -> String {
    format!("{run}.parquet")
}

impl Failures<'_> {
    /// Keeps `bytes` (a Parquet file of failing rows) as `run`'s; the object name.
    pub async fn put(&self, run: &RunId, bytes: &[u8]) -> Result<String, BusError> {
        let name = name(run);
        if let Ok(info) = self.0.failures_store().info(&name).await
            && !info.deleted
        {
            return Ok(name);
        }
        let mut reader = bytes;
        self.0
            .failures_store()
            .put(name.as_str(), &mut reader)
            .await
            .map_err(|e| BusError::store(format!("keeping failing rows {name}"), e))?;
        Ok(name)
    }

    /// `run`'s failing rows (a Parquet file); `None` when it kept none.
    pub async fn get(&self, run: &RunId) -> Result<Option<Vec<u8>>, BusError> {
        use async_nats::jetstream::object_store::GetErrorKind;
        let name = name(run);
        let err = |e: Box<dyn std::error::Error + Send + Sync>| {
            BusError::store(format!("reading failing rows {name}"), e)
        };
        let mut object = match self.0.failures_store().get(&name).await {
            Ok(o) => o,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.into())),
        };
        let mut data = Vec::new();
        object
            .read_to_end(&mut data)
            .await
            .map_err(|e| err(e.into()))?;
        Ok(Some(data))
    }
}
