//! Unit tests of the parent module.

use super::*;

#[test]
fn numbers_and_categories_are_summarised() {
    let table = Table {
        numeric: vec![
            (0..101)
                .map(|i| if i == 100 { None } else { Some(i as f64) })
                .collect(),
        ],
        categorical: vec![
            (0..101)
                .map(|i| {
                    if i % 3 == 0 {
                        Some("a".to_string())
                    } else if i % 3 == 1 {
                        Some("b".into())
                    } else {
                        None
                    }
                })
                .collect(),
        ],
        target: vec![0; 101],
        coerced: Vec::new(),
    };
    let rows: Vec<usize> = (0..101).collect();
    let p = of_table(&table, &["x".into()], &["c".into()], &rows);
    assert_eq!(p.rows, 101);
    let x = &p.columns[0];
    assert_eq!((x.count, x.nulls, x.distinct), (100, 1, 100));
    let n = x.numeric.as_ref().unwrap();
    assert_eq!((n.min, n.max, n.mean), (0.0, 99.0, 49.5));
    assert_eq!(n.quantiles.len(), QUANTILES);
    assert_eq!(n.quantiles[10], 49.5, "the median of 0..99");
    assert!((n.std - 29.011491975882016).abs() < 1e-9);
    let c = &p.columns[1];
    assert_eq!((c.count, c.nulls, c.distinct), (68, 33, 2));
    assert_eq!(c.top, [("a".to_string(), 34), ("b".to_string(), 34)]);
}
