use super::*;

#[test]
fn a_tally_counts_agreement_distance_errors_and_latency_buckets() {
    let mut t = Tally::default();
    // Production at 0.5, the shadow at 0.6: 0.55 is positive for one, negative for the other.
    t.add(
        (&[0.9, 0.55, 0.1], 0.5),
        Ok((&[0.8, 0.55, 0.2], 0.6)),
        Duration::from_micros(70),
    );
    t.add((&[0.3, 0.7], 0.5), Err(()), Duration::from_millis(3));
    assert_eq!((t.mirrored, t.agreed, t.errors), (3, 2, 2));
    assert!((t.abs_diff_sum - 0.2).abs() < 1e-12);
    assert_eq!(t.latency_buckets[1], 1, "70 µs is in the 100 µs bucket");
    assert_eq!(t.latency_buckets[6], 1, "3 ms is in the 5 ms bucket");
    assert_eq!(t.shadow_scores[8], 1, "0.8 is in the ninth bin");
    assert_eq!(t.production_scores[9], 1, "0.9 is in the last bin");
    t.served(&[1.0, 0.0], Duration::from_micros(10));
    t.production(&[0.5]);
    assert_eq!((t.served, t.production_served), (2, 1));
    assert_eq!((t.shadow_scores[9], t.shadow_scores[0]), (1, 1));
}

#[test]
fn reports_of_every_replica_add_up() {
    let report = |replica: &str, mirrored, agreed, fast, slow| ShadowReport {
        replica: replica.into(),
        mirrored,
        agreed,
        abs_diff_sum: mirrored as f64 * 0.1,
        latency_buckets: {
            let mut b = vec![0; LATENCY_BOUNDS_US.len() + 1];
            b[0] = fast;
            b[4] = slow;
            b
        },
        ..Default::default()
    };
    let s = summarize(&[report("a", 60, 54, 99, 0), report("b", 40, 36, 0, 1)]);
    assert_eq!(s.mirrored, 100);
    assert_eq!(s.agreement, Some(0.9));
    assert!((s.mean_abs_diff.unwrap() - 0.1).abs() < 1e-12);
    assert_eq!(s.replicas, 2);
    assert_eq!(s.error_rate, Some(0.0));
    // 99 of 100 requests in the 50 µs bucket: the 99th percentile is 0.05 ms.
    assert_eq!(s.latency_p99_ms, Some(0.05));
    assert_eq!(summarize(&[]).agreement, None);
    assert_eq!(summarize(&[]).error_rate, None);
}

#[test]
fn psi_is_zero_for_alike_scores_large_for_opposite_ones_and_needs_enough_records() {
    let alike = [10, 20, 30, 40, 50, 50, 40, 30, 20, 10];
    assert_eq!(psi(&alike, &alike), Some(0.0));
    let flat = [30; 10];
    assert!(psi(&alike, &flat).unwrap() > 0.1);
    assert!(
        psi(
            &[300, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 300]
        )
        .unwrap()
            > 5.0
    );
    assert_eq!(
        psi(&[5; 10], &[5; 10]),
        None,
        "50 records a side is too few"
    );
}

fn plan(extra: &str) -> RolloutPlan {
    let spec: tollgate_spec::rollout::Rollout = serde_saphyr::from_str(&format!(
        "shadow: {{share: 0.5, duration: 30s}}\ncanary: {{steps: [5, 25, 50, 100], step: 15m}}\n{extra}"
    ))
    .unwrap();
    plan_of(&spec)
}

#[test]
fn a_plan_has_its_shadow_phase_then_each_step() {
    let p = plan("");
    let names: Vec<String> = phases(&p).into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "shadow",
            "canary 5%",
            "canary 25%",
            "canary 50%",
            "canary 100%"
        ]
    );
    let all = phases(&p);
    assert_eq!((all[0].mirror, all[0].canary), (0.5, 0.0));
    assert_eq!(all[0].duration, Duration::from_secs(30));
    assert_eq!((all[2].mirror, all[2].canary), (0.0, 0.25));
    assert_eq!(all[2].duration, Duration::from_secs(900));
    assert_eq!(p.min_agreement, -1.0, "a check the spec does not ask for");
}

#[test]
fn the_analysis_fails_on_each_limit_and_waits_for_labels() {
    let p = plan(
        "analysis: {max_error_rate: 0.01, max_latency_p99_ms: 10, min_agreement: 0.9, max_prediction_drift: 0.1, min_auc_roc: 0.8, min_labels: 100}",
    );
    let good = Summary {
        mirrored: 1000,
        agreement: Some(0.97),
        error_rate: Some(0.0),
        latency_p99_ms: Some(0.5),
        prediction_drift: Some(0.01),
        replicas: 2,
        ..Default::default()
    };
    let few = Live {
        labels: 20,
        auc_roc: Some(0.1),
    };
    let a = analyze(&p, &good, few);
    assert!(a.passed, "{a:?}");
    assert!(a.line().contains("20 of 100 labels"), "{}", a.line());
    let bad_auc = analyze(
        &p,
        &good,
        Live {
            labels: 150,
            auc_roc: Some(0.6),
        },
    );
    assert!(!bad_auc.passed);
    assert_eq!(bad_auc.line(), "live AUC-ROC 0.6000 (min 0.8)");
    for (summary, says) in [
        (
            Summary {
                agreement: Some(0.4),
                ..good.clone()
            },
            "agreement 0.4000 (min 0.9)",
        ),
        (
            Summary {
                error_rate: Some(0.2),
                ..good.clone()
            },
            "error rate 0.2000 (max 0.01)",
        ),
        (
            Summary {
                latency_p99_ms: Some(20.0),
                ..good.clone()
            },
            "latency p99 20.0000 ms (max 10 ms)",
        ),
        (
            Summary {
                prediction_drift: Some(3.0),
                ..good.clone()
            },
            "prediction drift (PSI) 3.0000 (max 0.1)",
        ),
    ] {
        let a = analyze(&p, &summary, Live::default());
        assert!(!a.passed);
        assert_eq!(a.line(), says);
    }
    // A canary step has no agreement to judge: it is not held against the candidate.
    let canary = Summary {
        agreement: None,
        ..good
    };
    assert!(analyze(&p, &canary, Live::default()).passed);
}
