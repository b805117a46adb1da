//! Every failing row, not a sample: `tollgate validate --failures` on the dirty churn data
//! names exactly the rows pandas finds for each failed per-row expectation.

use std::collections::BTreeSet;

use super::processes::{cli, generate};
use super::security::python;

/// The rows pandas finds: null customer ids, ages outside 0..120, and every row of a
/// repeated id, as `expectation,row` lines (the example spec's positions, from 1).
const PANDAS: &str = r#"
import sys
import pandas as pd
d = pd.read_parquet(sys.argv[1])
rows = [(2, i) for i in d.index[d.customer_id.isna()]]
present = d.customer_id.notna()
rows += [(3, i) for i in d.index[present & d.customer_id.duplicated(keep=False)]]
rows += [(4, i) for i in d.index[d.age.notna() & ((d.age < 0) | (d.age > 120))]]
for e, i in rows:
    print(f"{e},{i}")
"#;

#[test]
fn validate_writes_exactly_the_failing_rows_of_the_dirty_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dirty.parquet");
    generate(&data, 5_000, &["--dirty"]);
    let out = dir.path().join("failures.csv");
    let spec = tollgate_e2e::workspace_root().join("examples/churn/tollgate.yaml");
    let validated = cli(
        &[],
        &[
            "validate",
            data.to_str().unwrap(),
            "--spec",
            spec.to_str().unwrap(),
            "--failures",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(
        validated.status.code(),
        Some(1),
        "a failed validation exits 1"
    );
    let said = String::from_utf8_lossy(&validated.stderr);
    assert!(said.contains("failing rows written to"), "{said}");

    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("expectation,type,column,row,customer_id")
    );
    let ours: BTreeSet<(u32, u64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect();
    let pandas = std::process::Command::new(python())
        .args(["-c", PANDAS, data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        pandas.status.success(),
        "{}",
        String::from_utf8_lossy(&pandas.stderr)
    );
    let theirs: BTreeSet<(u32, u64)> = String::from_utf8_lossy(&pandas.stdout)
        .lines()
        .map(|l| {
            let (e, r) = l.split_once(',').unwrap();
            (e.parse().unwrap(), r.parse().unwrap())
        })
        .collect();
    assert!(
        theirs.iter().any(|(e, _)| *e == 2) && theirs.iter().any(|(e, _)| *e == 4),
        "the dirty data has null ids and bad ages"
    );
    assert_eq!(ours, theirs);
}
