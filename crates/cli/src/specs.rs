//! `tollgate apply`, `tollgate specs` and `tollgate schedules`: a model's spec registered
//! without a run (as `kubectl apply` does), the applied specs, and each schedule's next
//! slots and last fire.

use chrono::Utc;
use tollgate_pipeline::Stores;
use tollgate_spec::ModelSpec;

use crate::{
    CliError,
    output::{table, when},
};

/// Who applies a spec, and what they allow.
pub struct Apply {
    /// The registry token to call with (an admin's).
    pub token: String,
    /// The name the caller gives (the token's identity is what is recorded).
    pub identity: String,
    /// Allow schedule slots less than a minute apart.
    pub allow_frequent_schedule: bool,
}

/// `tollgate apply SPEC`: makes the spec its model's policy, through the registry (which
/// checks the caller is an admin and records who applied it); schedules count from now.
/// The folder's code snapshot goes into the code store first, when the spec needs it.
pub async fn apply(
    nats_url: &str,
    registry_url: &str,
    how: &Apply,
    path: &std::path::Path,
) -> Result<(), CliError> {
    let (spec, text) = ModelSpec::load(path)?;
    let bus = crate::connect_bus(nats_url).await?;
    let code = crate::upload::code(&bus, &spec, path).await?;
    let applied = crate::connect::client_with(registry_url, &how.token)?
        .apply_spec(tollgate_proto::ApplySpecRequest {
            spec_yaml: text,
            code_digest: code.unwrap_or_default(),
            actor: how.identity.clone(),
            allow_frequent_schedule: how.allow_frequent_schedule,
        })
        .await?
        .into_inner();
    say!(
        "applied {} ({}) as its policy: spec {}{}",
        spec.model,
        path.display(),
        &applied.digest[..12.min(applied.digest.len())],
        if applied.applied_by.is_empty() {
            String::new()
        } else {
            format!(", by {}", applied.applied_by)
        }
    );
    for entry in &spec.schedule.0 {
        if let Some(next) = entry.next_after(Utc::now()) {
            say!(
                "  schedule {} ({}): next slot {}",
                entry.cron,
                entry.timezone,
                next.with_timezone(&entry.timezone.0).to_rfc3339()
            );
        }
    }
    if let Some(data) = &spec.data {
        say!("  data source {}", data.source);
    }
    Ok(())
}

/// `tollgate specs`: every model's applied spec (its policy), with its digest, who
/// applied it and its approvers.
pub async fn list(nats_url: &str) -> Result<(), CliError> {
    let bus = crate::connect_bus(nats_url).await?;
    let mut t = table(&[
        "model",
        "digest",
        "applied",
        "by",
        "approvers",
        "data source",
        "schedules",
        "plans",
    ]);
    for model in bus.specs().models().await? {
        let Some(published) = bus
            .specs()
            .current(&model)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?
        else {
            continue;
        };
        let spec = &published.spec;
        let applied = bus.specs().applied(&model).await?;
        let by = bus.specs().applied_by(&model).await?;
        t.add_row(vec![
            model,
            published.digest[..12].to_string(),
            applied.map_or("-".into(), when),
            by.unwrap_or_else(|| "-".into()),
            spec.approvers.join(", "),
            spec.data.as_ref().map_or("-".into(), |d| d.source.clone()),
            spec.schedule.0.len().to_string(),
            spec.triggers
                .keys()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    say!("{t}");
    Ok(())
}

/// `tollgate schedules`: each model's schedule entries, their next slots and last fire.
pub async fn schedules(nats_url: &str, next: usize) -> Result<(), CliError> {
    let bus = crate::connect_bus(nats_url).await?;
    let mut t = table(&[
        "model",
        "cron",
        "timezone",
        "catch-up",
        "next slots",
        "last fired",
    ]);
    let mut any = false;
    for model in bus.specs().models().await? {
        let Ok(Some(published)) = bus.specs().current(&model).await else {
            continue;
        };
        for entry in &published.spec.schedule.0 {
            any = true;
            let since = bus
                .trigger_claims()
                .schedule_since(&model, &entry.id())
                .await?;
            let mut slots = Vec::new();
            let mut cursor = Utc::now();
            for _ in 0..next {
                let Some(slot) = entry.next_after(cursor) else {
                    break;
                };
                slots.push(
                    slot.with_timezone(&entry.timezone.0)
                        .format("%a %Y-%m-%d %H:%M %Z")
                        .to_string(),
                );
                cursor = slot;
            }
            t.add_row(vec![
                model.clone(),
                entry.cron.to_string(),
                entry.timezone.to_string(),
                entry.catch_up.to_string(),
                slots.join("\n"),
                since.map_or("- (not counting yet)".into(), when),
            ]);
        }
    }
    if any {
        say!("{t}");
    } else {
        say!("no schedules: add `schedule:` to a spec and `tollgate apply` it");
    }
    Ok(())
}
