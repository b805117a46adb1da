//! Unit tests of the parent module: every builder round-trips through its parser.

use super::*;

#[test]
fn run_events_round_trip_through_their_subjects() {
    let run = RunId::new();
    for &kind in RunEventKind::NAMED {
        let s = run_event(&run, kind);
        assert_eq!(run_event_of(&s), Some((run.clone(), kind)));
        assert!(s.starts_with(run_events(&run).trim_end_matches('>')));
    }
    assert_eq!(
        run_event(&"01JABC".parse().unwrap(), RunEventKind::Completed),
        "tollgate.run.01JABC.completed"
    );
    assert_eq!(run_event_of("tollgate.stage.train"), None);
    assert_eq!(run_event_of("tollgate.run.bad-id.completed"), None);
    assert_eq!(run_event_of("tollgate.run.01JABC.exploded"), None);
}

#[test]
fn triggers_and_stages_round_trip_through_their_subjects() {
    for &kind in TriggerKind::NAMED {
        assert_eq!(trigger_kind(&trigger(kind)), Some(kind));
    }
    assert_eq!(trigger(TriggerKind::Data), "tollgate.trigger.data");
    assert_eq!(trigger_kind("tollgate.trigger.unknown"), None);
    assert_eq!(
        trigger_origin("tollgate.trigger.data"),
        Some((TriggerKind::Data, Origin::Publisher))
    );
    assert_eq!(
        trigger_origin(&system_trigger(TriggerKind::Data)),
        Some((TriggerKind::Data, Origin::System))
    );
    assert_eq!(
        trigger_origin(&system_trigger(TriggerKind::Schedule)),
        Some((TriggerKind::Schedule, Origin::System))
    );
    assert_eq!(trigger_origin("tollgate.trigger.code.system"), None);
    assert_ne!(
        trigger_keys::claim(Origin::Publisher, &"x".parse().unwrap()),
        trigger_keys::claim(Origin::System, &"x".parse().unwrap())
    );
    for &s in Stage::NAMED {
        assert_eq!(stage_of(&stage(s)), Some(s));
        assert_eq!(stage_consumer(s), format!("stage-{}", s.name()));
    }
    assert_eq!(stage_of("tollgate.run.x.created"), None);
}

#[test]
fn model_keys_are_built_from_typed_parts_and_version_keys_parse_back() {
    let run: RunId = "01JABC".parse().unwrap();
    assert_eq!(ModelKey::Version("churn", 3).to_string(), "churn.v.3");
    assert_eq!(ModelKey::version_of("churn.v.3"), Some(("churn", 3)));
    assert_eq!(ModelKey::version_of("churn.next"), None);
    assert_eq!(ModelKey::version_of("churn.v.x"), None);
    assert_eq!(
        ModelKey::Stage("churn", ModelStage::Production).to_string(),
        "churn.stage.production"
    );
    assert_eq!(ModelKey::Run("churn", &run).to_string(), "churn.run.01JABC");
    assert_eq!(
        ModelKey::Alias("churn", "champion").to_string(),
        "churn.alias.champion"
    );
    assert_eq!(
        ModelKey::Approvals("churn", 2).to_string(),
        "churn.approvals.2"
    );
    assert_eq!(ModelKey::Next("churn").to_string(), "churn.next");
}

#[test]
fn message_ids_and_other_keys_are_distinct_per_run_stage_and_event() {
    let run: RunId = "01JABC".parse().unwrap();
    assert_eq!(msg_id::stage(&run, Stage::Train), "01JABC.train");
    assert_eq!(
        msg_id::event(&run, RunEventKind::StageStarted, Some((Stage::Gate, 7))),
        "01JABC.gate.started.7"
    );
    assert_eq!(
        msg_id::event(&run, RunEventKind::Created, None),
        "01JABC.created"
    );
    let t: TriggerId = "drift-01J".parse().unwrap();
    assert_eq!(msg_id::trigger(&t), "drift-01J");
    assert_eq!(trigger_keys::claim(Origin::System, &t), "t.sys.drift-01J");
    assert_eq!(spec_keys::by_digest("ab"), "sha.ab");
    assert_eq!(spec_keys::current("churn"), "model.churn");
    assert_eq!(
        spec_keys::model_of(&spec_keys::current("churn")),
        Some("churn")
    );
    assert_eq!(spec_keys::model_of("sha.ab"), None);
    assert_eq!(spec_keys::applied("churn"), "applied.churn");
    assert_eq!(
        trigger_keys::schedule_since("churn", "ab12"),
        "sched.churn.ab12"
    );
    assert!(
        trigger_ids::schedule("churn", "ab12", 1_800_000_000_000)
            .parse::<TriggerId>()
            .is_ok()
    );
    assert_eq!(alert(Alert::Approval), "tollgate.alert.approval");
    assert!(trigger_ids::drift(&run).parse::<TriggerId>().is_ok());
    assert_eq!(
        trigger_ids::registry(Stage::Production, "churn", 3),
        "registry-production-churn-3"
    );
    assert_eq!(deadletter("stage-train"), "tollgate.deadletter.stage-train");
}
