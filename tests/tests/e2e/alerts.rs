//! The spec's alert rules on a real bus: two blocked runs in a row fire the gate rule
//! once on `tollgate.alert.gate_blocks`, and the next passing run resolves it.

use std::time::Duration;
use tollgate_pipeline::Stores;

use futures::StreamExt;
use prost::Message as _;
use tollgate_bus::subjects::{self, Alert as Rule};
use tollgate_e2e::{Pipeline, example_spec};
use tollgate_proto::{Alert, AlertState, TriggerKind, Verdict};

/// The next alert on `sub`, or `None` when none comes within `wait`.
async fn next_alert(sub: &mut async_nats::Subscriber, wait: Duration) -> Option<Alert> {
    let msg = tokio::time::timeout(wait, sub.next()).await.ok()??;
    Some(Alert::decode(msg.payload).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_blocked_runs_fire_the_gate_alert_once_and_a_passing_run_resolves_it() {
    let p = Pipeline::start().await.unwrap();
    let mut sub = p
        .bus
        .client()
        .subscribe(subjects::alert(Rule::GateBlocks))
        .await
        .unwrap();
    let data = p.dataset("alerts.parquet", 3000, 5, false).unwrap();
    let strict = example_spec().replace("f1: {min: 0.70}", "f1: {min: 0.999}");

    let first = p.run_file(TriggerKind::Code, &strict, &data).await.unwrap();
    assert_eq!(first.verdict(), Verdict::Blocked, "{first:?}");
    assert!(
        next_alert(&mut sub, Duration::from_secs(2)).await.is_none(),
        "one block must not fire a rule of two"
    );

    let second = p.run_file(TriggerKind::Code, &strict, &data).await.unwrap();
    assert_eq!(second.verdict(), Verdict::Blocked);
    let fired = next_alert(&mut sub, Duration::from_secs(20))
        .await
        .expect("the gate alert fires after the second block");
    assert_eq!(fired.state(), AlertState::Firing, "{fired:?}");
    assert_eq!(
        (fired.rule.as_str(), fired.model.as_str()),
        ("gate_blocks", "churn")
    );
    assert_eq!(fired.run_ids, [second.run_id.clone(), first.run_id.clone()]);
    assert!(
        fired.summary.contains("blocked 2 versions"),
        "{}",
        fired.summary
    );

    // A third block keeps it firing without a second alert.
    let third = p.run_file(TriggerKind::Code, &strict, &data).await.unwrap();
    assert_eq!(third.verdict(), Verdict::Blocked);
    assert!(
        next_alert(&mut sub, Duration::from_secs(2)).await.is_none(),
        "a firing rule fires once"
    );

    let passed = p
        .run_file(TriggerKind::Code, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(passed.verdict(), Verdict::Passed, "{passed:?}");
    let resolved = next_alert(&mut sub, Duration::from_secs(20))
        .await
        .expect("the passing run resolves the gate alert");
    assert_eq!(resolved.state(), AlertState::Resolved, "{resolved:?}");
    assert_eq!(resolved.run_ids, std::slice::from_ref(&passed.run_id));

    let kept = p.bus.alerts().list().await.unwrap();
    let gate = kept.iter().find(|a| a.rule == "gate_blocks").unwrap();
    assert_eq!(gate.state(), AlertState::Resolved);
    assert!(
        kept.iter().all(|a| a.state() != AlertState::Firing),
        "no other rule fired: {kept:?}"
    );
}
