//! Unit tests of the parent module.

use super::*;

const DAY: f64 = 86_400e6;

#[test]
fn times_deltas_and_arithmetic_evaluate_as_gx_reads_them() {
    let now = 1_700_000_000_000_000;
    assert_eq!(evaluate("now()", now), Ok(Param::Time(now)));
    assert_eq!(
        evaluate("now() - timedelta(weeks=52*100)", now),
        Ok(Param::Time(now - (5200.0 * 7.0 * DAY) as i64))
    );
    assert_eq!(
        evaluate("now() + timedelta(days=1, hours=12)", now),
        Ok(Param::Time(now + (1.5 * DAY) as i64))
    );
    assert_eq!(
        evaluate("datetime(2003, 1, 1)", now),
        Ok(Param::Time(1_041_379_200_000_000))
    );
    assert_eq!(
        evaluate("datetime(2003, 1, 1) - timedelta(2)", now),
        Ok(Param::Time(1_041_379_200_000_000 - (2.0 * DAY) as i64))
    );
    assert_eq!(evaluate("(2 + 3) * -4 / 2", now), Ok(Param::Number(-10.0)));
    assert_eq!(
        evaluate("2 * timedelta(hours=1)", now),
        Ok(Param::Delta(7_200e6))
    );
}

#[test]
fn what_it_cannot_evaluate_is_a_clear_error() {
    for (expression, says) in [
        (
            "urn:great_expectations:validations:x",
            "not a suite parameter",
        ),
        ("now() * 2", "cannot multiply"),
        ("datetime(2003, 13, 1)", "not a date"),
        ("datetime(2003)", "needs a year, a month and a day"),
        ("timedelta(fortnights=1)", "no argument \"fortnights\""),
        ("1 / 0", "division by zero"),
        ("now() + 1", "cannot add"),
        ("(1 + 2", "without its )"),
        ("now() @ 1", "not part of"),
    ] {
        let e = evaluate(expression, 0).unwrap_err();
        assert!(e.contains(says), "{expression}: {e}");
    }
}
