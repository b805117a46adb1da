//! Great Expectations' own test definitions, run through the engine behind
//! `tollgate validate`. The JSON files under `tests/gx/test_definitions` are GX 1.2.0's,
//! unchanged (see `tests/gx/README.md`); every case GX runs on its pandas backend is
//! written to a Parquet file with its pandas schema and graded as GX grades it: success,
//! the number of unexpected values, the observed value, and an error where GX raises.
//! The test fails below [`REQUIRED`] of graded cases, and when a case GX expects to raise
//! does not. It prints the rate per expectation type and every skipped case with why.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use polars::prelude::*;
use serde_json::{Map, Value};
use tollgate_ml::validate::{summary_json, supported, timestamp, validate};
use tollgate_spec::{Expectation, python_json};

/// The share of graded cases that must match GX.
const REQUIRED: f64 = 0.98;

/// Relative and absolute tolerance of numeric observed values: GX's own (`RTOL`, `ATOL`).
const RTOL: f64 = 1e-5;
const ATOL: f64 = 1e-8;

/// One GX test: its expectation, input and expected output.
struct Case {
    kind: String,
    title: String,
    kwargs: Map<String, Value>,
    out: Map<String, Value>,
    /// GX raises for this input (`traceback_substring`, or an `error` block).
    raises: bool,
    tolerance: Option<f64>,
}

/// How one case went.
enum Outcome {
    Match,
    Differs(String),
    Skipped(String),
}

fn definitions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gx/test_definitions")
}

/// Whether a dataset or test block runs on GX's pandas backend (`only_for` and
/// `suppress_test_for`, as GX's own runner reads them).
fn for_pandas(block: &Map<String, Value>) -> bool {
    let names = |key: &str| -> Vec<String> {
        match block.get(key) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(v)) => v
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    };
    let only = names("only_for");
    let suppressed = names("suppress_test_for");
    (only.is_empty()
        || only
            .iter()
            .any(|b| matches!(b.as_str(), "pandas" | "pandas_v3_api" | "pandas>=024")))
        && !suppressed
            .iter()
            .any(|b| b == "pandas" || b == "pandas_v3_api")
}

/// A JSON value as pandas' object column shows it when written as text.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// One column from its JSON values and pandas dtype (inferred as pandas does without one:
/// integers with a null become floats).
fn column(name: &str, values: &[Value], dtype: Option<&str>) -> Result<Column, String> {
    let name = PlSmallStr::from_str(name);
    let present: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
    let inferred = if present.is_empty() {
        "null"
    } else if present.iter().all(|v| v.is_boolean()) {
        "bool"
    } else if present.iter().all(|v| v.is_i64() || v.is_u64()) {
        if present.len() < values.len() {
            "float"
        } else {
            "int"
        }
    } else if present.iter().all(|v| v.is_number()) {
        "float"
    } else {
        "str"
    };
    let dtype = match dtype {
        None | Some("object") => inferred,
        Some(d) => d,
    };
    let lower = dtype.to_ascii_lowercase();
    let floats = || values.iter().map(Value::as_f64).collect::<Vec<_>>();
    Ok(match lower.as_str() {
        "null" => Column::full_null(name, values.len(), &DataType::Null),
        "bool" | "boolean" => {
            Column::new(name, values.iter().map(Value::as_bool).collect::<Vec<_>>())
        }
        d if d.starts_with("int") || d.starts_with("uint") => Column::new(
            name,
            values
                .iter()
                .map(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
                .collect::<Vec<_>>(),
        ),
        d if d.starts_with("float") => Column::new(name, floats()),
        d if d.starts_with("datetime") || d == "timestamp" || d == "date" => {
            let micros = values
                .iter()
                .map(|v| v.as_str().map(timestamp).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            // A value with an offset makes pandas' column zone-aware (UTC here).
            let zoned = values
                .iter()
                .filter_map(Value::as_str)
                .any(|s| dtparse::parse(s).is_ok_and(|(_, offset)| offset.is_some()));
            let series = Int64Chunked::from_iter_options(name, micros.into_iter())
                .into_datetime(TimeUnit::Microseconds, zoned.then_some(TimeZone::UTC))
                .into_series();
            if d == "date" {
                series
                    .cast(&DataType::Date)
                    .map_err(|e| e.to_string())?
                    .into()
            } else {
                series.into()
            }
        }
        _ => Column::new(name, values.iter().map(as_text).collect::<Vec<_>>()),
    })
}

/// Writes a GX dataset to a Parquet file with its pandas schema.
fn write(
    data: &Map<String, Value>,
    schema: Option<&Map<String, Value>>,
    path: &Path,
) -> Result<(), String> {
    let columns = data
        .iter()
        .map(|(name, values)| {
            let values = values.as_array().ok_or("a column that is not a list")?;
            let dtype = schema.and_then(|s| s.get(name)).and_then(Value::as_str);
            column(name, values, dtype)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut df = DataFrame::new_infer_height(columns).map_err(|e| e.to_string())?;
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    ParquetWriter::new(file)
        .finish(&mut df)
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn close(ours: f64, theirs: f64, rtol: f64) -> bool {
    (ours - theirs).abs() <= ATOL + rtol * theirs.abs()
}

/// GX's observed value against ours: numbers within tolerance, everything else equal.
fn same_observed(ours: &Value, theirs: &Value, rtol: f64) -> bool {
    match (ours, theirs) {
        (Value::Number(a), Value::Number(b)) => close(
            a.as_f64().unwrap_or(f64::NAN),
            b.as_f64().unwrap_or(f64::NAN),
            rtol,
        ),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_observed(x, y, rtol))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| same_observed(x, y, rtol)))
        }
        (a, b) => a == b,
    }
}

/// Grades our result as GX's runner grades its own.
fn grade(case: &Case, result: &Value) -> Result<(), String> {
    let raised = result["exception_info"]["raised_exception"] == Value::Bool(true);
    let message = &result["exception_info"]["exception_message"];
    if case.raises {
        return if raised {
            Ok(())
        } else {
            Err("GX raises an error; Tollgate returned a result".into())
        };
    }
    if raised {
        return Err(format!("Tollgate raised: {message}"));
    }
    let ours = &result["result"];
    if let Some(success) = case.out.get("success")
        && result["success"] != *success
    {
        return Err(format!(
            "success {} where GX has {success} (observed {}, {} unexpected)",
            result["success"], ours["observed_value"], ours["unexpected_count"]
        ));
    }
    let listed = case
        .out
        .get("unexpected_list")
        .or_else(|| case.out.get("unexpected_index_list"))
        .and_then(Value::as_array);
    if let Some(list) = listed
        && ours["unexpected_count"].as_u64() != Some(list.len() as u64)
    {
        return Err(format!(
            "{} unexpected where GX has {}",
            ours["unexpected_count"],
            list.len()
        ));
    }
    let theirs = case
        .out
        .get("observed_value")
        .or_else(|| case.out.get("result").and_then(|r| r.get("observed_value")));
    if let Some(theirs) = theirs
        && !same_observed(
            &ours["observed_value"],
            theirs,
            case.tolerance.unwrap_or(RTOL),
        )
    {
        return Err(format!(
            "observed {} where GX has {theirs}",
            ours["observed_value"]
        ));
    }
    let details = &ours["details"];
    if let Some(want) = case.out.get("details")
        && !same_observed(details, want, RTOL)
    {
        return Err(format!("details {details} where GX has {want}"));
    }
    if let Some(Value::Array(counts)) = case.out.get("value_counts") {
        let have = details["value_counts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(missing) = counts
            .iter()
            .find(|c| !have.iter().any(|h| same_observed(h, c, RTOL)))
        {
            return Err(format!(
                "value count {missing} missing from {}",
                details["value_counts"]
            ));
        }
    }
    for key in ["observed_partition", "expected_partition"] {
        let Some(want) = case.out.get(key) else {
            continue;
        };
        for part in ["bins", "weights", "tail_weights"] {
            let ours = &details[key][part];
            if (part != "tail_weights" || !ours.is_null()) && !all_close(ours, &want[part]) {
                return Err(format!("{key}.{part} {ours} where GX has {}", want[part]));
            }
        }
    }
    Ok(())
}

/// A number, or Python's infinities written as text.
fn numeric(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// numpy's `allclose` over two lists of numbers.
fn all_close(ours: &Value, theirs: &Value) -> bool {
    match (ours.as_array(), theirs.as_array()) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| match (numeric(x), numeric(y)) {
                        (Some(x), Some(y)) => x == y || close(x, y, RTOL),
                        _ => false,
                    })
        }
        _ => false,
    }
}

fn run(case: &Case, data: &Path) -> Outcome {
    let expectation = Expectation {
        kind: case.kind.clone(),
        kwargs: case.kwargs.clone(),
    };
    match validate(data, std::slice::from_ref(&expectation)) {
        Ok(report) => {
            let json = summary_json(&report, "gx");
            match grade(case, &json["results"][0]) {
                Ok(()) => Outcome::Match,
                Err(why) => Outcome::Differs(why),
            }
        }
        Err(_) if case.raises => Outcome::Match,
        Err(e) => Outcome::Differs(format!("the dataset was refused: {e}")),
    }
}

/// Every pandas case of one definitions file, with its outcome.
fn cases_of(file: &Path, dir: &Path) -> Vec<(Case, Outcome)> {
    let mut outcomes = Vec::new();
    let doc: Value = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&python_json(&t)).map_err(|e| e.to_string()))
    {
        Ok(doc) => doc,
        Err(e) => panic!("{}: {e}", file.display()),
    };
    let kind = doc["expectation_type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let datasets = doc["datasets"].as_array().cloned().unwrap_or_default();
    for (d, dataset) in datasets.iter().enumerate() {
        let Some(dataset) = dataset.as_object() else {
            continue;
        };
        if !for_pandas(dataset) {
            continue;
        }
        let path = dir.join(format!("{kind}-{d}.parquet"));
        let mixed = mixed_columns(dataset);
        let written = match dataset.get("data") {
            Some(Value::Object(data)) => {
                let schema = dataset
                    .get("schemas")
                    .and_then(|s| s.get("pandas"))
                    .and_then(Value::as_object);
                write(data, schema, &path)
            }
            _ => Err("a dataset of several tables".to_string()),
        };
        for test in dataset["tests"].as_array().cloned().unwrap_or_default() {
            let Some(test) = test.as_object() else {
                continue;
            };
            if !for_pandas(test) {
                continue;
            }
            let out = test
                .get("out")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let raises = out.contains_key("traceback_substring") || test.contains_key("error");
            let case = Case {
                kind: kind.clone(),
                title: test["title"].as_str().unwrap_or_default().to_string(),
                kwargs: test
                    .get("in")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                out,
                raises,
                tolerance: test.get("tolerance").and_then(Value::as_f64),
            };
            let uses_mixed = mixed.iter().find(|c| {
                case.kwargs.values().any(|v| match v {
                    Value::String(s) => s == *c || s.contains(&format!("{c} ")),
                    _ => false,
                })
            });
            let outcome = if !supported().any(|s| s == kind.as_str()) {
                Outcome::Skipped("the expectation type is not supported yet".into())
            } else if !test.get("in").is_some_and(Value::is_object) {
                Outcome::Skipped("positional arguments".into())
            } else {
                match &written {
                    Ok(()) => run(&case, &path),
                    Err(why) => Outcome::Skipped(why.clone()),
                }
            };
            let outcome = match (outcome, uses_mixed) {
                (Outcome::Differs(why), Some(c)) => Outcome::Differs(format!(
                    "{why} [column {c} mixes numbers and text: a pandas object column, which \
                     Parquet cannot hold, so it is text here]"
                )),
                (outcome, _) => outcome,
            };
            outcomes.push((case, outcome));
        }
    }
    outcomes
}

/// Columns of a dataset without a pandas type that mix numbers and text.
fn mixed_columns(dataset: &Map<String, Value>) -> Vec<String> {
    let typed = |c: &str| {
        dataset
            .get("schemas")
            .and_then(|s| s.get("pandas"))
            .and_then(|p| p.get(c))
            .and_then(Value::as_str)
            .is_some_and(|t| t != "object")
    };
    dataset
        .get("data")
        .and_then(Value::as_object)
        .map(|data| {
            data.iter()
                .filter(|(c, values)| {
                    let v = values.as_array().cloned().unwrap_or_default();
                    !typed(c) && v.iter().any(Value::is_number) && v.iter().any(Value::is_string)
                })
                .map(|(c, _)| c.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(json_files(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn great_expectations_test_definitions_pass_on_the_pandas_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut per_type: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut differs, mut skipped, mut unraised) = (Vec::new(), Vec::new(), Vec::new());
    for file in json_files(&definitions()) {
        for (case, outcome) in cases_of(&file, dir.path()) {
            let name = format!("{}: {}", case.kind, case.title);
            match outcome {
                Outcome::Skipped(why) => skipped.push(format!("{name} ({why})")),
                Outcome::Match => per_type.entry(case.kind).or_default().0 += 1,
                Outcome::Differs(why) => {
                    if case.raises {
                        unraised.push(name.clone());
                    }
                    differs.push(format!("{name}: {why}"));
                    per_type.entry(case.kind).or_default().1 += 1;
                }
            }
        }
    }
    let (matched, total) = per_type
        .values()
        .fold((0, 0), |(m, t), (ok, bad)| (m + ok, t + ok + bad));
    println!("{:<60} {:>7} {:>6}", "expectation type", "matched", "rate");
    for (kind, (ok, bad)) in &per_type {
        println!(
            "{kind:<60} {:>7} {:>5.1}%",
            format!("{ok}/{}", ok + bad),
            100.0 * *ok as f64 / (ok + bad) as f64
        );
    }
    let rate = matched as f64 / total.max(1) as f64;
    println!(
        "{:<60} {:>7} {:>5.1}%",
        "all",
        format!("{matched}/{total}"),
        100.0 * rate
    );
    println!("\ndiffering ({}):", differs.len());
    for d in &differs {
        println!("  {d}");
    }
    println!("\nskipped ({}):", skipped.len());
    for s in &skipped {
        println!("  {s}");
    }
    assert!(
        unraised.is_empty(),
        "GX raises, Tollgate did not: {unraised:#?}"
    );
    assert!(
        rate >= REQUIRED,
        "{matched} of {total} GX cases match ({:.1}%), below {:.0}%",
        100.0 * rate,
        100.0 * REQUIRED
    );
}
