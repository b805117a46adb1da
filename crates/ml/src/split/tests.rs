//! Unit tests of the parent module.

use super::*;

fn labels(n: usize) -> Vec<u8> {
    // 30% positives, in a pattern.
    (0..n).map(|i| u8::from(i % 10 < 3)).collect()
}

#[test]
fn the_split_is_seeded_and_keeps_each_class_share() {
    let y = labels(10_000);
    let (train, test) = stratified(&y, 7, 0.2);
    assert_eq!(train.len() + test.len(), 10_000);
    assert_eq!(test.len(), 2_000);
    let positives = test.iter().filter(|&&i| y[i] == 1).count();
    assert_eq!(positives, 600, "30% of the test rows, exactly");
    assert_eq!(stratified(&y, 7, 0.2).1, test);
    assert_ne!(stratified(&y, 8, 0.2).1, test);
}

#[test]
fn folds_cover_every_row_once_and_are_stratified() {
    let y = labels(1_000);
    let rows: Vec<usize> = (0..1_000).collect();
    let f = folds(&y, &rows, 5, 3);
    assert_eq!(f.len(), 5);
    let mut all: Vec<usize> = f.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, rows);
    for fold in &f {
        assert_eq!(fold.len(), 200);
        assert_eq!(fold.iter().filter(|&&i| y[i] == 1).count(), 60);
    }
}
