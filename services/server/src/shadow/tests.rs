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
    // 99 of 100 requests in the 50 µs bucket: the 99th percentile is 0.05 ms.
    assert_eq!(s.latency_p99_ms, Some(0.05));
    assert_eq!(summarize(&[]).agreement, None);
}
