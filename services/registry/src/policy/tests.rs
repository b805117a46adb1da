//! Unit tests of the parent module: the rules alone, without a bus.

use tollgate_proto::{AuditEntry, GateDecision};

use super::*;

const SPEC: &str = include_str!("../../../../examples/churn/tollgate.yaml");

fn policy(extra: &str) -> ModelSpec {
    ModelSpec::parse(&format!("{SPEC}\n{extra}")).unwrap()
}

fn version(blessed: Option<bool>, gated_at: i64) -> ModelVersion {
    let mut v = ModelVersion {
        model: "churn".into(),
        version: 3,
        run_id: "01RUN".into(),
        last_gate: blessed.map(|blessed| GateDecision {
            blessed,
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Some(blessed) = blessed {
        let change = if blessed {
            ModelChange::GateBlessed
        } else {
            ModelChange::GateBlocked
        };
        v.audit.push(AuditEntry {
            action: change.name().into(),
            at_unix_ms: gated_at,
            ..Default::default()
        });
    }
    v
}

fn decision(approver: &str, approved: bool, at: i64) -> Approval {
    Approval {
        approver: approver.into(),
        approved,
        at_unix_ms: at,
        reason: "r".into(),
        ..Default::default()
    }
}

const HOUR: i64 = 3_600_000;

#[test]
fn staging_needs_a_blessed_gate_or_an_override() {
    assert!(staging_allowed(&version(Some(true), 10)).is_ok());
    let err = staging_allowed(&version(Some(false), 10))
        .unwrap_err()
        .to_string();
    assert!(err.contains("a blocked gate decision"), "{err}");
    assert!(
        staging_allowed(&version(None, 0))
            .unwrap_err()
            .to_string()
            .contains("no gate decision")
    );
    let mut overridden = version(Some(false), 10);
    overridden.audit.push(AuditEntry {
        action: ModelChange::Overridden.name().into(),
        at_unix_ms: 20,
        ..Default::default()
    });
    assert!(staging_allowed(&overridden).is_ok());
}

#[test]
fn approvals_count_after_the_latest_gate_until_they_expire() {
    let spec = policy("");
    let v = version(Some(true), 100 * HOUR);
    // Before the gate decided: does not count.
    assert!(!standing(&[decision("alice", true, 99 * HOUR)], &v, &spec, 101 * HOUR).enough());
    let fresh = [decision("alice", true, 100 * HOUR + 1)];
    assert!(standing(&fresh, &v, &spec, 101 * HOUR).enough());
    // 72 hours later by default it has expired.
    let late = standing(&fresh, &v, &spec, 173 * HOUR);
    assert!(!late.enough());
    assert!(
        late.shortfall(&v).contains("has 0 of the 1 approvals"),
        "{}",
        late.shortfall(&v)
    );
}

#[test]
fn two_approvals_need_two_distinct_approvers_and_a_rejection_stops_it() {
    let spec = policy("approvals_required: 2\n");
    let v = version(Some(true), 0);
    let one = [decision("alice", true, 1), decision("alice", true, 2)];
    let s = standing(&one, &v, &spec, 3);
    assert_eq!(s.valid, ["alice"]);
    assert!(!s.enough());
    let two = [decision("alice", true, 1), decision("bob", true, 2)];
    assert!(standing(&two, &v, &spec, 3).enough());
    // An approval by someone not (or no longer) on the list does not count.
    let stranger = [decision("alice", true, 1), decision("mallory", true, 2)];
    assert!(!standing(&stranger, &v, &spec, 3).enough());
    let rejected = [decision("alice", true, 1), decision("bob", false, 2)];
    let s = standing(&rejected, &v, &spec, 3);
    assert!(!s.enough());
    assert!(s.shortfall(&v).contains("rejected by bob"));
}

#[test]
fn approvers_come_from_the_policy_and_authors_may_not_approve() {
    let spec = policy("");
    let open = Caller::open();
    assert!(require_approver(&open, &spec, "alice", false).is_ok());
    let err = require_approver(&open, &spec, "mallory", false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mallory is not an approver of churn (approvers: alice, bob)"),
        "{err}"
    );
    let admin = Caller {
        identity: "root".into(),
        role: Some(tollgate_service::tokens::Role::Admin),
    };
    assert!(require_approver(&admin, &spec, "root", true).is_ok());
    assert!(require_approver(&admin, &spec, "root", false).is_err());
    let v = version(Some(true), 0);
    let authors = vec!["alice".to_string()];
    let err = not_the_author(&v, &authors, "alice", "approve")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("alice made the change churn v3 came from"),
        "{err}"
    );
    assert!(not_the_author(&v, &authors, "bob", "approve").is_ok());
}
