//! Unit tests of the parent module.

use super::*;

fn good() -> Integration {
    Integration {
        golden: 20,
        max_difference: 0.0,
        out_of_range: 0,
        latency_p99_ms: 0.01,
    }
}

#[test]
fn a_faithful_fast_model_passes() {
    assert!(integration_failures(&good(), Some(100.0)).is_empty());
}

#[test]
fn each_failure_is_named() {
    let bad = Integration {
        golden: 20,
        max_difference: 0.25,
        out_of_range: 2,
        latency_p99_ms: 150.0,
    };
    let f = integration_failures(&bad, Some(100.0)).join("; ");
    assert!(
        f.contains("differ from the trainer's by up to 2.500e-1"),
        "{f}"
    );
    assert!(f.contains("2 probabilities outside [0, 1]"), "{f}");
    assert!(
        f.contains("latency p99 150.000 ms over the gate's 100 ms"),
        "{f}"
    );
    let none = Integration {
        golden: 0,
        ..good()
    };
    assert!(integration_failures(&none, None)[0].contains("no golden records"));
    let unmeasured = Integration {
        latency_p99_ms: f64::NAN,
        ..good()
    };
    assert_eq!(
        integration_failures(&unmeasured, Some(100.0)).len(),
        1,
        "NaN latency fails"
    );
    assert!(
        integration_failures(&unmeasured, None).is_empty(),
        "no limit, no latency check"
    );
}
