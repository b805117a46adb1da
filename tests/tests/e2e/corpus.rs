//! A bad-data corpus, generated here, through the whole pipeline on a real nats-server:
//! each file ends its run `failed` with a reason a person can act on, and the services
//! keep serving the next run.

use std::path::PathBuf;

use tollgate_e2e::{Pipeline, example_spec};
use tollgate_pipeline::dataset::file_uri;
use tollgate_proto::{TriggerKind, Verdict};

/// Rewrites the cells of `column` in the CSV `text` for the data rows `rows` (0-based).
fn set_cells(text: &str, column: &str, rows: std::ops::Range<usize>, value: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines[0].split(',').position(|c| c == column).unwrap();
    for line in &mut lines[1 + rows.start..1 + rows.end] {
        let mut cells: Vec<&str> = line.split(',').collect();
        cells[at] = value;
        *line = cells.join(",");
    }
    lines.join("\n") + "\n"
}

/// The corpus: (name, file, what the run's reason must say).
fn corpus(p: &Pipeline) -> Vec<(&'static str, PathBuf, &'static str)> {
    let dir = p.dir.path();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let good_csv =
        std::fs::read_to_string(p.dataset("good.csv", 2000, 11, false).unwrap()).unwrap();
    let parquet = std::fs::read(p.dataset("good.parquet", 2000, 11, false).unwrap()).unwrap();
    let header = good_csv.lines().next().unwrap().to_string();

    let mut bad_magic = parquet.clone();
    bad_magic[..4].copy_from_slice(b"XXXX");
    let wide_header: Vec<String> = (0..5000).map(|i| format!("c{i}")).collect();
    let wide_row = vec!["1"; 5000].join(",");
    let wide = std::iter::once(wide_header.join(","))
        .chain(std::iter::repeat_n(wide_row, 100))
        .collect::<Vec<_>>()
        .join("\n");
    let huge = set_cells(&good_csv, "contract", 0..1, &"x".repeat(10 * 1024 * 1024));
    // "month\xe9to-month": Latin-1 where UTF-8 belongs.
    let mut latin1 = good_csv.clone().into_bytes();
    latin1[good_csv.find("month-to-month").unwrap() + 5] = 0xe9;
    let no_target = good_csv
        .lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(rest, _)| rest).to_string())
        .collect::<Vec<_>>()
        .join("\n");

    vec![
        (
            "Parquet with a bad magic number",
            write("bad_magic.parquet", &bad_magic),
            "not a Parquet file: it does not start with PAR1",
        ),
        (
            "Parquet with a truncated footer",
            write("truncated.parquet", &parquet[..parquet.len() - 100]),
            "is unreadable",
        ),
        (
            "truncated CSV",
            write(
                "truncated.csv",
                &good_csv.as_bytes()[..good_csv.len() / 2 + 7],
            ),
            "the file looks cut short",
        ),
        (
            "mixed types in a column",
            write(
                "mixed.csv",
                set_cells(&good_csv, "monthly_charges", 10..60, "12 USD").as_bytes(),
            ),
            "column \"monthly_charges\": 50 values are not numbers (e.g. \"12 USD\" in row 11)",
        ),
        (
            "a header-only file",
            write("header_only.csv", format!("{header}\n").as_bytes()),
            "expect_table_row_count_to_be_between",
        ),
        (
            "NaN and infinities in a feature",
            write(
                "nan.csv",
                set_cells(
                    &set_cells(&good_csv, "total_charges", 4..5, "NaN"),
                    "total_charges",
                    5..7,
                    "-inf",
                )
                .as_bytes(),
            ),
            "column \"total_charges\": 3 values are NaN or infinite (the first in row 5)",
        ),
        (
            "one class only",
            write(
                "one_class.csv",
                set_cells(&good_csv, "label", 0..2000, "0").as_bytes(),
            ),
            "the training rows hold one class only",
        ),
        (
            "a 10 MB string cell",
            write("huge_cell.csv", huge.as_bytes()),
            "expect_column_values_to_be_in_set",
        ),
        (
            "5,000 columns, none the spec's",
            write("wide.csv", wide.as_bytes()),
            "expect_column_values_to_not_be_null(customer_id): column \"customer_id\" is not in the dataset",
        ),
        (
            "a CSV that is not UTF-8",
            write("latin1.csv", &latin1),
            "not UTF-8 text",
        ),
        (
            "the target column missing",
            write("no_target.csv", no_target.as_bytes()),
            "expect_column_values_to_be_in_set(label): column \"label\" is not in the dataset",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_file_of_the_bad_data_corpus_fails_its_run_with_a_clear_reason() {
    let p = Pipeline::start().await.unwrap();
    let spec = example_spec();
    let mut wrong = Vec::new();
    for (what, path, says) in corpus(&p) {
        let run = p.run_file(TriggerKind::Data, &spec, &path).await.unwrap();
        if run.verdict() != Verdict::Failed || !run.reason.contains(says) {
            wrong.push(format!(
                "{what}: {} {:?}, expected failed with {says:?}",
                run.verdict().name(),
                run.reason
            ));
        }
    }
    let t = p
        .trigger(
            TriggerKind::Data,
            "churn",
            &spec,
            "file:///no/such/dataset.parquet",
        )
        .await
        .unwrap();
    let run = p.verdict(&t).await.unwrap();
    if run.verdict() != Verdict::Failed || !run.reason.contains("does not exist") {
        wrong.push(format!("a missing dataset: {:?}", run.reason));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let good = p.dataset("good.parquet", 2000, 12, false).unwrap();
    let t = p
        .trigger(TriggerKind::Data, "churn", &spec, &file_uri(&good))
        .await
        .unwrap();
    let run = p.verdict(&t).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
}
