//! Unit tests of the parent module.

use super::*;
use tollgate_proto::StageResult;

fn run(verdict: Verdict, stages: &[(Stage, StageStatus, u64)]) -> RunSummary {
    RunSummary {
        verdict: verdict as i32,
        stages: stages
            .iter()
            .map(|&(stage, status, duration_ms)| StageResult {
                stage: stage as i32,
                status: status as i32,
                duration_ms,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn defaults() -> AlertSettings {
    AlertSettings {
        pipeline_failures: 2,
        training_minutes: 60.0,
        validation_failures: 1,
        gate_blocks: 2,
    }
}

#[test]
fn a_blocked_run_counts_toward_the_gate_rule_and_not_the_pipeline_rule() {
    let blocked = run(
        Verdict::Blocked,
        &[
            (Stage::Validate, StageStatus::Passed, 10),
            (Stage::Train, StageStatus::Passed, 10),
            (Stage::Gate, StageStatus::Blocked, 10),
        ],
    );
    let s = defaults();
    assert_eq!(step(Rule::GateBlocks, &s, &blocked), (Step::Hit, 2));
    assert_eq!(step(Rule::PipelineFailures, &s, &blocked), (Step::Skip, 2));
    assert_eq!(
        step(Rule::ValidationFailures, &s, &blocked),
        (Step::Clear, 1)
    );
    assert_eq!(step(Rule::TrainingMinutes, &s, &blocked), (Step::Clear, 1));
}

#[test]
fn a_failed_validation_hits_both_the_validation_and_pipeline_rules_and_skips_the_gate() {
    let failed = run(
        Verdict::Failed,
        &[(Stage::Validate, StageStatus::Failed, 10)],
    );
    let s = defaults();
    assert_eq!(step(Rule::ValidationFailures, &s, &failed), (Step::Hit, 1));
    assert_eq!(step(Rule::PipelineFailures, &s, &failed), (Step::Hit, 2));
    assert_eq!(step(Rule::GateBlocks, &s, &failed).0, Step::Skip);
    assert_eq!(step(Rule::TrainingMinutes, &s, &failed).0, Step::Skip);
}

#[test]
fn a_training_past_its_minutes_hits_and_a_zero_turns_the_rule_off() {
    let slow = run(
        Verdict::Passed,
        &[(Stage::Train, StageStatus::Passed, 61 * 60_000)],
    );
    let mut s = defaults();
    assert_eq!(step(Rule::TrainingMinutes, &s, &slow), (Step::Hit, 1));
    s.training_minutes = 0.0;
    assert_eq!(step(Rule::TrainingMinutes, &s, &slow).1, 0);
}
