//! Unit tests of the parent module.

use super::*;

#[test]
fn split_is_seeded_and_near_the_fraction() {
    let (train, test) = split(10_000, 7, 0.2);
    assert_eq!(train.len() + test.len(), 10_000);
    assert!((1_800..2_200).contains(&test.len()), "{}", test.len());
    assert_eq!(split(10_000, 7, 0.2).1, test);
    assert_ne!(split(10_000, 8, 0.2).1, test);
}
