//! Model specs in the `tollgate_specs` bucket, which this module owns. Every spec a run
//! used is stored by its sha256, and runs record the digest. A model's policy (its
//! "current" spec) is the one last applied (`tollgate apply`, through the registry): who
//! approves, what must pass, what runs when. A spec a trigger carries is a proposal,
//! stored by digest but never the policy.

use crate::Stores;
use futures::TryStreamExt;
use tollgate_spec::ModelSpec;

use tollgate_bus::{
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
pub struct Specs<'a>(pub(crate) &'a Bus);

impl Specs<'_> {
    /// Stores a spec's text by its digest (a proposal, or what a run used); returns the
    /// digest. It becomes nobody's policy.
    pub async fn store(&self, text: &str) -> Result<String, BusError> {
        let digest = tollgate_spec::digest(text);
        self.0
            .key_value(Bucket::Specs)
            .put(spec_keys::by_digest(&digest), text.to_string().into())
            .await
            .map_err(|e| BusError::store(format!("storing spec {digest}"), e))?;
        Ok(digest)
    }

    /// Stores a parsed spec's text by digest and makes it its model's policy (what
    /// [`Specs::current`] reads); returns the digest. Only [`apply`] does this.
    async fn make_policy(&self, spec: &ModelSpec, text: &str) -> Result<String, BusError> {
        let digest = self.store(text).await?;
        self.0
            .key_value(Bucket::Specs)
            .put(spec_keys::current(&spec.model), digest.clone().into())
            .await
            .map_err(|e| BusError::store(format!("applying the spec of {}", spec.model), e))?;
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

    /// The model's policy: the spec last applied for it (`tollgate apply`).
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

    /// Records that `by` applied `model`'s spec at `at_ms` (`tollgate apply`).
    pub async fn set_applied(&self, model: &str, at_ms: i64, by: &str) -> Result<(), BusError> {
        let value = format!("{at_ms} {by}");
        self.0
            .key_value(Bucket::Specs)
            .put(spec_keys::applied(model), value.into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::store(format!("recording apply of {model}"), e))
    }

    /// Who applied `model`'s spec, if anyone did.
    pub async fn applied_by(&self, model: &str) -> Result<Option<String>, BusError> {
        Ok(self.applied_record(model).await?.map(|(_, by)| by))
    }

    /// The `(at_ms, by)` of `model`'s last apply, if it was applied.
    async fn applied_record(&self, model: &str) -> Result<Option<(i64, String)>, BusError> {
        let text = self
            .text(
                spec_keys::applied(model),
                format!("reading apply of {model}"),
            )
            .await?;
        Ok(text.and_then(|t| {
            // Records from before `by` was kept hold the time alone.
            let (at, by) = t.split_once(' ').unwrap_or((t.as_str(), ""));
            Some((at.parse().ok()?, by.to_string()))
        }))
    }

    /// The value under `key` of the specs bucket as text.
    async fn text(&self, key: String, what: String) -> Result<Option<String>, BusError> {
        let value = self
            .0
            .key_value(Bucket::Specs)
            .get(key)
            .await
            .map_err(|e| BusError::store(what, e))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).to_string()))
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
        let text = self
            .text(
                spec_keys::code(model),
                format!("reading the code of {model}"),
            )
            .await?;
        Ok(text.filter(|d| !d.is_empty()))
    }

    /// When `model`'s spec was last applied, if it was.
    pub async fn applied(&self, model: &str) -> Result<Option<i64>, BusError> {
        Ok(self.applied_record(model).await?.map(|(at, _)| at))
    }
}

/// Applies a spec as `tollgate apply` does, at `at_ms`, by `by`: makes it its model's
/// policy (with the digest of its folder's code snapshot, when it has one), records when
/// and by whom, and starts each schedule entry counting from then. The registry calls it
/// for an admin; nothing a trigger carries reaches it.
pub async fn apply(
    bus: &Bus,
    spec: &ModelSpec,
    text: &str,
    code: Option<&str>,
    at_ms: i64,
    by: &str,
) -> Result<String, BusError> {
    let digest = bus.specs().make_policy(spec, text).await?;
    if let Some(code) = code {
        bus.specs().set_code(&spec.model, code).await?;
    }
    bus.specs().set_applied(&spec.model, at_ms, by).await?;
    for entry in &spec.schedule.0 {
        bus.trigger_claims()
            .set_schedule_since(&spec.model, &entry.id(), at_ms)
            .await?;
    }
    Ok(digest)
}
