//! Load against a real nats-server: a burst of 1,000 triggers for 10 models, 100 of them
//! delivered twice, gives each trigger exactly one run, and every run a verdict.

use std::{collections::BTreeMap, time::Duration};

use tollgate_e2e::{Pipeline, load::burst};
use tollgate_proto::Verdict;

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_a_thousand_triggers_with_duplicates_gives_each_one_run_and_a_verdict() {
    let p = Pipeline::start().await.unwrap();
    let b = burst(&p, 1000, 10, 100, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(b.published, 1100);
    let per = b.runs_per_trigger();
    assert_eq!(per.len(), 1000, "a run for every trigger");
    assert!(per.values().all(|&n| n == 1), "no trigger ran twice");
    let failed: Vec<_> = b
        .runs
        .iter()
        .filter(|r| r.verdict() != Verdict::Passed)
        .map(|r| (&r.run_id, &r.reason))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let mut per_model: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &b.runs {
        *per_model.entry(r.model.as_str()).or_default() += 1;
    }
    assert_eq!(per_model.len(), 10);
    assert!(per_model.values().all(|&n| n == 100), "{per_model:?}");
}
