//! Applying a spec as its model's policy (`tollgate apply`): an admin's act, done here so
//! the caller's credential is checked and recorded with it, and the spec (and its code
//! snapshot) checked before it governs anything.

use tollgate_bus::{Bus, now_ms};
use tollgate_pipeline::Stores;
use tollgate_pipeline::code::{CodeError, CodeObject};
use tollgate_proto::{AppliedSpec, ApplySpecRequest};
use tollgate_spec::ModelSpec;
use tracing::info;

use crate::error::RegistryError;

/// Makes `r.spec_yaml` its model's policy, applied by `r.actor`.
pub async fn apply(bus: &Bus, r: ApplySpecRequest) -> Result<AppliedSpec, RegistryError> {
    let spec = ModelSpec::parse(&r.spec_yaml)
        .map_err(|e| RegistryError::InvalidArgument(e.to_string()))?;
    let unavailable = |e: tollgate_bus::BusError| RegistryError::Unavailable(Box::new(e));
    if let Some(why) = spec.too_frequent_schedule()
        && !r.allow_frequent_schedule
    {
        return Err(RegistryError::InvalidArgument(why));
    }
    if r.code_digest.is_empty() {
        if spec.needs_code() {
            return Err(RegistryError::InvalidArgument(format!(
                "the spec of {} trains with a command or lists tests, and no snapshot of its folder came with it: apply it with `tollgate apply`, which packs the folder",
                spec.model
            )));
        }
    } else {
        match bus
            .code()
            .exists(CodeObject::Snapshot, &r.code_digest)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Err(RegistryError::FailedPrecondition(format!(
                    "code snapshot {} is not in the code store: apply with the CLI, which uploads it first",
                    r.code_digest
                )));
            }
            Err(CodeError::Bus(e)) => return Err(unavailable(e)),
            Err(e) => return Err(RegistryError::InvalidArgument(e.to_string())),
        }
    }
    let at = now_ms();
    let code = Some(r.code_digest.as_str()).filter(|c| !c.is_empty());
    let digest = tollgate_pipeline::specs::apply(bus, &spec, &r.spec_yaml, code, at, &r.actor)
        .await
        .map_err(unavailable)?;
    info!(model = %spec.model, %digest, by = %r.actor, "spec applied as the model's policy");
    Ok(AppliedSpec {
        model: spec.model,
        digest,
        applied_unix_ms: at,
        applied_by: r.actor,
        code_digest: r.code_digest,
    })
}
