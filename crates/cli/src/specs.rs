//! `tollgate apply`, `tollgate specs` and `tollgate schedules`: a model's spec registered
//! without a run (as `kubectl apply` does), the applied specs, and each schedule's next
//! slots and last fire.

use chrono::Utc;
use tollgate_spec::ModelSpec;

use crate::{
    CliError,
    show::{table, when},
};

/// `tollgate apply SPEC`: registers or updates the model's spec; schedules count from now.
pub async fn apply(nats_url: &str, path: &std::path::Path) -> Result<(), CliError> {
    let (spec, text) = ModelSpec::load(path)?;
    let bus = crate::connect_bus(nats_url).await?;
    let code = crate::upload::code(&bus, &spec, path).await?;
    let now = Utc::now().timestamp_millis();
    let digest = tollgate_bus::specs::apply(&bus, &spec, &text, code.as_deref(), now).await?;
    say!(
        "applied {} ({}): spec {}",
        spec.model,
        path.display(),
        &digest[..12]
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

/// `tollgate specs`: every model's current spec, with its digest.
pub async fn list(nats_url: &str) -> Result<(), CliError> {
    let bus = crate::connect_bus(nats_url).await?;
    let mut t = table(&[
        "model",
        "digest",
        "applied",
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
        t.add_row(vec![
            model,
            published.digest[..12].to_string(),
            applied.map_or("- (published by a trigger)".into(), when),
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
