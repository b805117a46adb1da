use super::*;

#[test]
fn requests_without_a_key_go_to_the_candidate_at_its_share_of_any_run() {
    for share in [0.05, 0.25, 0.5, 1.0] {
        let routed = AtomicU64::new(0);
        for n in [100_u32, 1_000, 2_000] {
            let taken = (0..n).filter(|_| takes(share, None, &routed)).count() as f64;
            // Each run continues the sequence; every run of it is within two of the share.
            assert!(
                (taken - share * f64::from(n)).abs() <= 2.0,
                "{share}: {taken} of {n}"
            );
        }
    }
    assert!(!takes(0.0, None, &AtomicU64::new(0)));
}

#[test]
fn a_request_key_always_goes_the_same_way_and_keys_split_at_the_share() {
    let routed = AtomicU64::new(0);
    let keys: Vec<String> = (0..4_000).map(|i| format!("req-{i}")).collect();
    let first: Vec<bool> = keys.iter().map(|k| takes(0.25, Some(k), &routed)).collect();
    let again: Vec<bool> = keys.iter().map(|k| takes(0.25, Some(k), &routed)).collect();
    assert_eq!(first, again);
    let share = first.iter().filter(|&&t| t).count() as f64 / keys.len() as f64;
    assert!((share - 0.25).abs() < 0.03, "{share}");
}
