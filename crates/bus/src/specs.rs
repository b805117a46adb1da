//! Published model specs in the `tollgate_specs` bucket, which this module owns. Each
//! spec a trigger carries is stored by its sha256 and becomes its model's current spec;
//! runs record the digest they used. The trigger-watcher publishes here, the registry
//! reads a model's approvers from the current spec.

use futures::TryStreamExt;
use tollgate_spec::ModelSpec;

use crate::{
    Bus, BusError,
    subjects::{Bucket, spec_keys},
};

/// Why a published spec could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecStoreError {
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A stored spec no longer parses (the rules changed since it was published).
    #[error("stored spec {digest}: {source}")]
    Invalid {
        /// Its digest.
        digest: String,
        /// Why it is refused.
        source: tollgate_spec::SpecError,
    },
}

/// A spec as published: its text, digest and parsed form.
#[derive(Debug, Clone)]
pub struct PublishedSpec {
    /// The sha256 of the text, hex.
    pub digest: String,
    /// The YAML as published.
    pub text: String,
    /// The parsed spec.
    pub spec: ModelSpec,
}

/// The published specs.
pub struct Specs<'a>(&'a Bus);

impl Bus {
    /// The published specs.
    pub fn specs(&self) -> Specs<'_> {
        Specs(self)
    }
}

impl Specs<'_> {
    /// Stores a parsed spec's text by digest and makes it its model's current spec;
    /// returns the digest.
    pub async fn publish(&self, spec: &ModelSpec, text: &str) -> Result<String, BusError> {
        let kv = self.0.key_value(Bucket::Specs);
        let digest = tollgate_spec::digest(text);
        let err = |e: Box<dyn std::error::Error + Send + Sync>| {
            BusError::store(format!("publishing spec of {}", spec.model), e)
        };
        kv.put(spec_keys::by_digest(&digest), text.to_string().into())
            .await
            .map_err(|e| err(e.into()))?;
        kv.put(spec_keys::current(&spec.model), digest.clone().into())
            .await
            .map_err(|e| err(e.into()))?;
        Ok(digest)
    }

    /// A published spec by digest.
    pub async fn get(&self, digest: &str) -> Result<Option<PublishedSpec>, SpecStoreError> {
        let kv = self.0.key_value(Bucket::Specs);
        let text = kv
            .get(spec_keys::by_digest(digest))
            .await
            .map_err(|e| BusError::store(format!("reading spec {digest}"), e))?;
        let Some(text) = text else { return Ok(None) };
        let text = String::from_utf8_lossy(&text).to_string();
        let spec = ModelSpec::parse(&text).map_err(|source| SpecStoreError::Invalid {
            digest: digest.into(),
            source,
        })?;
        Ok(Some(PublishedSpec {
            digest: digest.into(),
            text,
            spec,
        }))
    }

    /// The model's current spec: the last one published for it.
    pub async fn current(&self, model: &str) -> Result<Option<PublishedSpec>, SpecStoreError> {
        let kv = self.0.key_value(Bucket::Specs);
        let digest = kv
            .get(spec_keys::current(model))
            .await
            .map_err(|e| BusError::store(format!("reading current spec of {model}"), e))?;
        match digest {
            Some(d) => self.get(&String::from_utf8_lossy(&d)).await,
            None => Ok(None),
        }
    }
}

impl Specs<'_> {
    /// Every model that has a current spec, sorted.
    pub async fn models(&self) -> Result<Vec<String>, BusError> {
        let keys = self
            .0
            .key_value(Bucket::Specs)
            .keys()
            .await
            .map_err(|e| BusError::store("listing specs", e))?;
        let keys: Vec<String> = keys
            .try_collect()
            .await
            .map_err(|e| BusError::store("listing specs", e))?;
        let mut models: Vec<String> = keys
            .iter()
            .filter_map(|k| spec_keys::model_of(k).map(str::to_string))
            .collect();
        // The listing repeats a key written while it runs.
        models.sort();
        models.dedup();
        Ok(models)
    }

    /// Records that `model`'s spec was applied at `at_ms` (`tollgate apply`).
    pub async fn set_applied(&self, model: &str, at_ms: i64) -> Result<(), BusError> {
        self.0
            .key_value(Bucket::Specs)
            .put(spec_keys::applied(model), at_ms.to_string().into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::store(format!("recording apply of {model}"), e))
    }

    /// Makes `digest` the code snapshot runs of `model` use when their trigger carries
    /// none (a schedule, a data arrival).
    pub async fn set_code(&self, model: &str, digest: &str) -> Result<(), BusError> {
        self.0
            .key_value(Bucket::Specs)
            .put(spec_keys::code(model), digest.to_string().into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::store(format!("recording the code of {model}"), e))
    }

    /// The digest of `model`'s current code snapshot, if one was published.
    pub async fn code(&self, model: &str) -> Result<Option<String>, BusError> {
        let value = self
            .0
            .key_value(Bucket::Specs)
            .get(spec_keys::code(model))
            .await
            .map_err(|e| BusError::store(format!("reading the code of {model}"), e))?;
        Ok(value
            .map(|v| String::from_utf8_lossy(&v).to_string())
            .filter(|d| !d.is_empty()))
    }

    /// When `model`'s spec was last applied, if it was.
    pub async fn applied(&self, model: &str) -> Result<Option<i64>, BusError> {
        let value = self
            .0
            .key_value(Bucket::Specs)
            .get(spec_keys::applied(model))
            .await
            .map_err(|e| BusError::store(format!("reading apply of {model}"), e))?;
        Ok(value.and_then(|v| String::from_utf8_lossy(&v).parse().ok()))
    }
}

/// Applies a spec as `tollgate apply` does, at `at_ms`: publishes it (with the digest of
/// its folder's code snapshot, when it has one), records the time and starts each schedule
/// entry counting from then.
pub async fn apply(
    bus: &Bus,
    spec: &ModelSpec,
    text: &str,
    code: Option<&str>,
    at_ms: i64,
) -> Result<String, BusError> {
    let digest = bus.specs().publish(spec, text).await?;
    if let Some(code) = code {
        bus.specs().set_code(&spec.model, code).await?;
    }
    bus.specs().set_applied(&spec.model, at_ms).await?;
    for entry in &spec.schedule.0 {
        bus.trigger_claims()
            .set_schedule_since(&spec.model, &entry.id(), at_ms)
            .await?;
    }
    Ok(digest)
}
