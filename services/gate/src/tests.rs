//! Unit tests of the parent module.

use super::*;

#[test]
fn a_failed_min_blocks_and_is_named() {
    let mut checks = checks_for(
        Gate::AucRoc,
        Some(0.75),
        &Bound {
            min: Some(0.8),
            max: None,
        },
    );
    checks.extend(checks_for(
        Gate::LatencyP99Ms,
        Some(0.2),
        &Bound {
            min: None,
            max: Some(100.0),
        },
    ));
    let d = decide(checks, 3);
    assert!(!d.blessed);
    assert_eq!(d.checks[0].verdict(), CheckVerdict::Fail);
    assert_eq!(d.checks[1].verdict(), CheckVerdict::Pass);
    assert!(
        d.summary.contains("auc_roc 0.7500 not >= 0.8"),
        "{}",
        d.summary
    );
}

#[test]
fn champion_drop_is_absolute_or_relative_and_skipped_without_a_champion() {
    let spec = vec![
        ChampionCheck {
            metric: tollgate_spec::Metric::AucRoc,
            max_drop: 0.01,
            relative: false,
        },
        ChampionCheck {
            metric: tollgate_spec::Metric::F1,
            max_drop: 0.05,
            relative: true,
        },
    ];
    let new: BTreeMap<String, f64> = [("auc_roc".into(), 0.85), ("f1".into(), 0.76)].into();
    let old: BTreeMap<String, f64> = [("auc_roc".into(), 0.87), ("f1".into(), 0.78)].into();
    let checks = champion_checks(&spec, &new, Some((2, &old)));
    assert_eq!(
        checks[0].verdict(),
        CheckVerdict::Fail,
        "0.02 absolute drop > 0.01"
    );
    assert!((checks[0].observed - 0.02).abs() < 1e-12);
    assert_eq!(
        checks[1].verdict(),
        CheckVerdict::Pass,
        "2.6% relative drop <= 5%"
    );
    let none = champion_checks(&spec, &new, None);
    assert!(
        none.iter()
            .all(|c| c.verdict() == CheckVerdict::Skipped && c.note.contains("no Production"))
    );
    assert!(decide(none, 1).blessed);
}

#[test]
fn an_unmeasured_value_fails_its_check() {
    let checks = checks_for(
        Gate::AucRoc,
        None,
        &Bound {
            min: Some(0.8),
            max: None,
        },
    );
    assert_eq!(checks[0].verdict(), CheckVerdict::Fail);
    assert!(!decide(checks, 1).blessed);
}
