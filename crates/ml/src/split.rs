//! The seeded, stratified train/test split and cross-validation folds. The trainer and
//! the gate both derive the split from the labels, the row order and the spec's seed, so
//! the gate grades a model on exactly the rows it never saw.

/// Row indices of the training and test sets, stratified: each class keeps its share in
/// both, and the same labels, seed and fraction always give the same rows.
pub fn stratified(labels: &[u8], seed: u64, test_fraction: f64) -> (Vec<usize>, Vec<usize>) {
    let mut is_test = vec![false; labels.len()];
    for class in [0u8, 1] {
        // The k rows of the class with the smallest keys are its test rows: which k,
        // not their order, matters, so a selection does instead of a sort.
        let mut keyed: Vec<(u64, usize)> = (0..labels.len())
            .filter(|&i| labels[i] == class)
            .map(|i| (splitmix64(seed ^ splitmix64(i as u64)), i))
            .collect();
        let k = ((keyed.len() as f64 * test_fraction).round() as usize).min(keyed.len());
        if k < keyed.len() {
            keyed.select_nth_unstable(k);
        }
        for &(_, i) in &keyed[..k] {
            is_test[i] = true;
        }
    }
    (0..labels.len()).partition(|&i| !is_test[i])
}

/// `k` stratified folds of `rows`: the validation rows of each fold.
pub fn folds(labels: &[u8], rows: &[usize], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let k = k.max(1);
    let mut out = vec![Vec::new(); k];
    for class in [0u8, 1] {
        let mut members: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&i| labels[i] == class)
            .collect();
        members.sort_by_cached_key(|&i| splitmix64(seed.rotate_left(17) ^ splitmix64(i as u64)));
        for (j, i) in members.into_iter().enumerate() {
            out[j % k].push(i);
        }
    }
    for fold in &mut out {
        fold.sort_unstable();
    }
    out
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests;
