//! A burst of triggers for several models, some delivered twice: what the load test
//! asserts (every trigger one run, every run a verdict) and `make bench-load` times.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use anyhow::bail;
use tollgate_bus::{now_ms, subjects};
use tollgate_pipeline::dataset::file_uri;
use tollgate_proto::{RunSummary, Trigger, TriggerKind, Verdict};

use crate::{Pipeline, example_spec};

/// What a burst did.
#[derive(Debug)]
pub struct Burst {
    /// Distinct triggers published.
    pub unique: usize,
    /// Messages published, duplicates included.
    pub published: usize,
    /// Seconds spent publishing (every publish acknowledged by JetStream).
    pub publish_secs: f64,
    /// Seconds from the first publish until the last run had its verdict.
    pub done_secs: f64,
    /// The runs of the burst's triggers, as the registry records them.
    pub runs: Vec<RunSummary>,
    /// Publish-to-verdict time of each run, in ms, sorted.
    pub latencies_ms: Vec<f64>,
}

impl Burst {
    /// Runs per trigger id: exactly one each when nothing was lost or doubled.
    pub fn runs_per_trigger(&self) -> BTreeMap<&str, usize> {
        let mut per = BTreeMap::new();
        for r in &self.runs {
            *per.entry(r.trigger_id.as_str()).or_default() += 1;
        }
        per
    }

    /// The `p`th percentile (0..1) of publish-to-verdict, in ms.
    pub fn latency_ms(&self, p: f64) -> f64 {
        let n = self.latencies_ms.len();
        if n == 0 {
            return 0.0;
        }
        self.latencies_ms[((n as f64 - 1.0) * p).round() as usize]
    }
}

/// Publishes `triggers` code triggers spread over `models` models (each validating a
/// 1,000-row dataset), then `duplicates` of them again without a message id, so the
/// trigger claims must dedupe them; waits (up to `wait`) for every run's verdict.
pub async fn burst(
    p: &Pipeline,
    triggers: usize,
    models: usize,
    duplicates: usize,
    wait: Duration,
) -> anyhow::Result<Burst> {
    let data = file_uri(&p.dataset("load.parquet", 1000, 21, false)?);
    let specs: Vec<(String, String)> = (0..models)
        .map(|m| {
            let model = format!("load{m}");
            let text = example_spec()
                .replace("model: churn", &format!("model: {model}"))
                .replace("  code: [validate, train, gate]", "  code: [validate]");
            (model, text)
        })
        .collect();
    for (_, spec) in &specs {
        p.apply(spec).await?;
    }
    let all: Vec<Trigger> = (0..triggers)
        .map(|i| {
            let (model, spec) = &specs[i % models];
            Trigger {
                trigger_id: ulid::Ulid::new().to_string(),
                kind: TriggerKind::Code as i32,
                model: model.clone(),
                spec_yaml: spec.clone(),
                dataset_uri: data.clone(),
                code_commit: format!("load-{i}"),
                created_unix_ms: now_ms(),
                ..Default::default()
            }
        })
        .collect();
    let started = Instant::now();
    let mut sent_at: HashMap<String, i64> = HashMap::new();
    let subject = subjects::trigger(TriggerKind::Code);
    for t in &all {
        sent_at.insert(t.trigger_id.clone(), now_ms());
        let id = subjects::msg_id::trigger(&t.trigger_id.parse()?);
        p.bus.publish(subject.clone(), t, Some(&id)).await?;
    }
    let step = (triggers / duplicates.max(1)).max(1);
    let again: Vec<&Trigger> = all.iter().step_by(step).take(duplicates).collect();
    for t in &again {
        p.bus.publish(subject.clone(), *t, None).await?;
    }
    let publish_secs = started.elapsed().as_secs_f64();

    let deadline = Instant::now() + wait;
    let runs = loop {
        let runs: Vec<RunSummary> = p
            .runs("")
            .await?
            .into_iter()
            .filter(|r| sent_at.contains_key(&r.trigger_id))
            .collect();
        let ended = runs
            .iter()
            .filter(|r| r.verdict() != Verdict::Unspecified)
            .count();
        if ended >= triggers {
            break runs;
        }
        if Instant::now() > deadline {
            bail!(
                "{ended} of {triggers} runs had a verdict after {}s ({} recorded)",
                wait.as_secs(),
                runs.len()
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let done_secs = started.elapsed().as_secs_f64();
    let mut latencies_ms: Vec<f64> = runs
        .iter()
        .map(|r| (r.finished_unix_ms - sent_at[&r.trigger_id]) as f64)
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    Ok(Burst {
        unique: triggers,
        published: triggers + again.len(),
        publish_secs,
        done_secs,
        runs,
        latencies_ms,
    })
}
