//! The seeded train/test split. The trainer and the gate both derive it from the row
//! index and the spec's seed, so the gate grades a model on exactly the rows it never saw.

/// Whether row `index` belongs to the test set.
pub fn is_test(index: usize, seed: u64, test_fraction: f64) -> bool {
    let h = splitmix64(seed ^ splitmix64(index as u64));
    ((h >> 11) as f64 / (1u64 << 53) as f64) < test_fraction
}

/// Row indices of the training and test sets of `rows` rows.
pub fn split(rows: usize, seed: u64, test_fraction: f64) -> (Vec<usize>, Vec<usize>) {
    (0..rows).partition(|&i| !is_test(i, seed, test_fraction))
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests;
