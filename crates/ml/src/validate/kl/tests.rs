use super::*;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// GX's `holdout_0_1`: values a, a, b, c against a 0.6 / b 0.4 with 0.1 held out for c.
#[test]
fn a_value_outside_a_categorical_partition_takes_the_tail_holdout() {
    let observed = [(json!("a"), 2), (json!("b"), 1), (json!("c"), 1)];
    let values = [json!("a"), json!("b")];
    let o = categorical(&values, &[0.6, 0.4], &observed, 4, 0.1);
    assert!(
        (o.divergence - 0.09943138400349738).abs() < 1e-12,
        "{}",
        o.divergence
    );
    let none = categorical(&values, &[0.6, 0.4], &observed, 4, 0.0);
    assert_eq!(verdict(none.divergence, Some(0.1)), (false, Value::Null));
}

/// GX's `manual_partition_lower_inf_bound`: values in four bins that expect a quarter
/// each, and the open lower bin.
#[test]
fn an_open_lower_bin_counts_the_values_below_the_first_finite_edge() {
    let values = [-0.5, 0.5, 1.5, 2.5, 3.0];
    let bins = [f64::NEG_INFINITY, 0.0, 1.0, 2.0, 3.0];
    let counts = histogram(&values, &bins);
    assert_eq!(
        counts.histogram,
        vec![1, 1, 1, 2],
        "the last bin holds its right edge"
    );
    let o = continuous(&bins, &[0.25, 0.25, 0.25, 0.25], None, &counts, 0.0, 0.0);
    assert!(o.divergence > 0.0 && o.divergence.is_finite());
    assert_eq!(
        o.details["expected_partition"]["bins"],
        json!([0.0, 1.0, 2.0, 3.0])
    );
    assert_eq!(
        o.details["observed_partition"]["tail_weights"],
        json!([0.2, 0.0])
    );
}

#[test]
fn entropy_is_scipys_normalised_relative_entropy() {
    assert_eq!(entropy(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
    assert!((entropy(&[1.0, 1.0], &[1.0, 3.0]) - 0.14384103622589045).abs() < 1e-12);
    assert!(entropy(&[0.5, 0.5], &[1.0, 0.0]).is_infinite());
}

#[test]
fn partitions_and_holdouts_gx_refuses_are_refused() {
    for (kwargs, why) in [
        (json!({"partition_object": {}}), "invalid partition object"),
        (
            json!({"partition_object": {"bins": [0, 1], "weights": [0.5]}}),
            "summing to 1",
        ),
        (
            json!({"partition_object": {"bins": [0, 1], "weights": [1.0]}, "tail_weight_holdout": 2}),
            "less than or equal to 1",
        ),
        (
            json!({"partition_object": {"values": ["a"], "weights": [1.0]}, "internal_weight_holdout": 0.1}),
            "discrete data",
        ),
        (
            json!({"partition_object": {"bins": ["-Infinity", 0, "Infinity"], "weights": [0.5, 0.5]}, "tail_weight_holdout": 0.1}),
            "infinite endpoints",
        ),
        (
            json!({"partition_object": {"bins": [0, 1], "weights": [0.8], "tail_weights": [0.1, 0.1]}, "tail_weight_holdout": 0.1}),
            "must be 0",
        ),
        (json!({"threshold": -1}), "greater than or equal to zero"),
        (
            json!({"partition_object": {"bins": [0], "weights": [], "tail_weights": [0.5, 0.5]}}),
            "invalid partition object",
        ),
    ] {
        let e = settings(&args(kwargs.clone())).unwrap_err();
        assert!(e.contains(why), "{kwargs}: {e}");
    }
}

#[test]
fn automatic_bins_cover_the_data_and_a_partition_built_from_it_diverges_by_nothing() {
    let values: Vec<f64> = (0..100).map(|i| f64::from(i) / 10.0).collect();
    let bins = auto_bins(&values);
    assert_eq!((bins[0], *bins.last().unwrap()), (0.0, 9.9));
    let counts = histogram(&values, &bins);
    assert_eq!(counts.histogram.iter().sum::<u64>(), 100);
    let weights: Vec<f64> = counts.histogram.iter().map(|&c| c as f64 / 100.0).collect();
    let o = continuous(&bins, &weights, Some([0.0, 0.0]), &counts, 0.0, 0.0);
    assert!(o.divergence.abs() < 1e-12);
}

/// One open bin over the whole line: no inner bins, and no panic.
#[test]
fn a_single_bin_from_minus_to_plus_infinity_has_no_inner_bins() {
    let bins = [f64::NEG_INFINITY, f64::INFINITY];
    let counts = histogram(&[1.0, 2.0], &bins);
    let o = continuous(&bins, &[1.0], None, &counts, 0.0, 0.0);
    assert_eq!(o.divergence, 0.0);
    assert_eq!(o.details["observed_partition"]["weights"], json!([]));
}
