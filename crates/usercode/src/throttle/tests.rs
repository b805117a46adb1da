//! Unit tests of the parent module.

use super::*;

#[test]
fn passes_a_few_lines_a_second_and_counts_the_rest() {
    let mut t = Throttle::default();
    let start = Instant::now();
    let passed = (0..100).filter(|_| t.admit(start)).count();
    assert_eq!(passed, PER_SECOND as usize);
    assert_eq!(t.held(), 100 - u64::from(PER_SECOND));
    assert!(t.admit(start + Duration::from_millis(1001)));
}

#[test]
fn stops_at_the_total() {
    let mut t = Throttle::default();
    let start = Instant::now();
    let passed = (0..u64::from(MAX_LINES) * 2)
        .filter(|i| t.admit(start + Duration::from_secs(*i)))
        .count();
    assert_eq!(passed, MAX_LINES as usize);
}
