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

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_validation_keeps_every_failing_row_beside_its_run() {
    use tollgate_proto::{TriggerKind, Verdict};
    let p = tollgate_e2e::Pipeline::start().await.unwrap();
    let dirty = p.dataset("dirty.parquet", 5_000, 7, true).unwrap();
    let spec = tollgate_e2e::example_spec();
    let run = p.run_file(TriggerKind::Data, &spec, &dirty).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Failed, "{}", run.reason);

    // The same rows `tollgate validate --failures` finds locally.
    let local = p.dir.path().join("local.csv");
    let spec_file = tollgate_e2e::workspace_root().join("examples/churn/tollgate.yaml");
    let validated = cli(
        &[],
        &[
            "validate",
            dirty.to_str().unwrap(),
            "--spec",
            spec_file.to_str().unwrap(),
            "--failures",
            local.to_str().unwrap(),
        ],
    );
    assert_eq!(validated.status.code(), Some(1));
    let kept = p.dir.path().join("kept.csv");
    let out = super::poison::tollgate(
        &p,
        &[
            "runs",
            "failures",
            &run.run_id,
            "--out",
            kept.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (local, kept_text) = (
        std::fs::read_to_string(&local).unwrap(),
        std::fs::read_to_string(&kept).unwrap(),
    );
    assert!(local.lines().count() > 100, "{local}");
    assert_eq!(kept_text, local);
    let shown = super::poison::tollgate(&p, &["runs", "show", &run.run_id]);
    let rows = local.lines().count() - 1;
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains(&format!("{rows} failing rows kept")),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );

    // One expectation's rows: the null customer ids (the spec's second).
    let nulls = p.dir.path().join("nulls.csv");
    let out = super::poison::tollgate(
        &p,
        &[
            "runs",
            "failures",
            &run.run_id,
            "--expectation",
            "2",
            "--out",
            nulls.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nulls = std::fs::read_to_string(&nulls).unwrap();
    let want = local.lines().filter(|l| l.starts_with("2,")).count();
    assert!(want > 0);
    assert_eq!(nulls.lines().count() - 1, want, "{nulls}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{want} failing rows written")));
}
