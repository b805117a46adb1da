//! ONNX models from the real exporters through Tollgate's scoring: scikit-learn pipelines
//! (skl2onnx), XGBoost and LightGBM (onnxmltools) and an MLP, trained by
//! `tests/python/onnx_exporters.py` in the venv `make test` builds, must give ONNX
//! Runtime's own Python probabilities within 1e-5 on every row; hostile files fail with a
//! reason and never panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use tollgate_ml::{
    artifact::{Artifact, ArtifactMeta, Lineage, Origin, Score, Scorer},
    onnx::{Classes, Elem, Inputs, OnnxError, OnnxModel, Output, TableRows, runtime},
    synth::{SynthOptions, churn},
    table::{Columns, Table},
};

const NUMERIC: [&str; 5] = [
    "age",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
];
const CATEGORICAL: [&str; 2] = ["contract", "payment_method"];
const TOLERANCE: f64 = 1e-5;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's Python (`TOLLGATE_PYTHON`, else `.tools/venv/bin/python`, which `make
/// test` installs the exporters into).
fn python() -> PathBuf {
    let path = std::env::var_os("TOLLGATE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: `make test` (or `make python-tools`) installs scikit-learn, skl2onnx, onnxmltools, xgboost, lightgbm and onnxruntime there",
        path.display()
    );
    path
}

fn run_python(script: &str, args: &[&Path]) {
    let out = Command::new(python())
        .arg(root().join("tests/python").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The models the exporters wrote, with ONNX Runtime's probabilities, in a temp dir.
struct Exported {
    dir: tempfile::TempDir,
    expected: serde_json::Map<String, serde_json::Value>,
}

fn exported() -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("churn.parquet");
    let mut df = churn(SynthOptions {
        rows: 3000,
        seed: 11,
        dirty: false,
    })
    .unwrap();
    tollgate_ml::data::write(&mut df, &data).unwrap();
    let out = dir.path().join("models");
    run_python("onnx_exporters.py", &[&data, &out]);
    let expected = std::fs::read_to_string(out.join("expected.json")).unwrap();
    let expected = serde_json::from_str(&expected).unwrap();
    Exported { dir, expected }
}

impl Exported {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("models").join(name)
    }

    fn bytes(&self, model: &str) -> Vec<u8> {
        std::fs::read(self.path(&format!("{model}.onnx"))).unwrap()
    }

    /// The model's features, target and classes, as its spec would name them.
    fn spec_of(&self, model: &str) -> (Vec<String>, Vec<String>, Columns, Classes) {
        let (numeric, categorical) = match model {
            "xgboost" | "lightgbm" => (names(&NUMERIC), vec![]),
            _ => (names(&NUMERIC), names(&CATEGORICAL)),
        };
        let (target, positive, classes) = if model == "zipmap_text_target" {
            let classes = Classes::Text {
                positive: "yes".into(),
                sorted: vec!["no".into(), "yes".into()],
            };
            ("churned", Some("yes".to_string()), classes)
        } else {
            ("label", None, Classes::Binary)
        };
        let columns = Columns {
            numeric: numeric.clone(),
            categorical: categorical.clone(),
            target: target.into(),
            positive_label: positive,
        };
        (numeric, categorical, columns, classes)
    }

    fn import(&self, model: &str) -> (OnnxModel, Table) {
        let (numeric, categorical, columns, classes) = self.spec_of(model);
        let onnx = OnnxModel::import(self.bytes(model), &numeric, &categorical, &classes)
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        let table = Table::load(&columns, &self.path("data.parquet")).unwrap();
        (onnx, table)
    }
}

#[test]
fn exporter_models_match_onnx_runtime_python_within_1e_5() {
    let exported = exported();
    let mut lines = vec![format!(
        "{:<24} {:<10} {:>6} {:>14}",
        "model", "inputs", "rows", "max |Δp|"
    )];
    let mut worst = Vec::new();
    for (model, want) in &exported.expected {
        let want: Vec<f64> = serde_json::from_value(want.clone()).unwrap();
        let (onnx, table) = exported.import(model);
        let rows: Vec<usize> = (0..table.rows()).collect();
        let got = onnx.score(&TableRows {
            table: &table,
            rows: &rows,
        });
        let got = got.unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(got.len(), want.len(), "{model}");
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let inputs = match &onnx.binding().inputs {
            Inputs::PerColumn(c) => format!("{} columns", c.len()),
            Inputs::Matrix { .. } => "matrix".into(),
        };
        lines.push(format!(
            "{model:<24} {inputs:<10} {:>6} {max:>14.3e}",
            got.len()
        ));
        if max > TOLERANCE {
            worst.push(format!("{model}: {max}"));
        }
    }
    println!("{}", lines.join("\n"));
    assert_eq!(exported.expected.len(), 7, "{lines:?}");
    assert!(worst.is_empty(), "beyond {TOLERANCE}: {worst:?}");
}

#[test]
fn bindings_follow_what_each_exporter_declares() {
    let exported = exported();
    let (forest, _) = exported.import("random_forest");
    let Inputs::PerColumn(columns) = &forest.binding().inputs else {
        panic!("a ColumnTransformer pipeline takes one input per column");
    };
    let age = columns.iter().find(|c| c.name == "age").unwrap();
    assert_eq!(age.elem, Elem::I64);
    let contract = columns.iter().find(|c| c.name == "contract").unwrap();
    assert_eq!(contract.elem, Elem::Str);
    assert!(matches!(
        forest.binding().output,
        Output::Matrix { column: 1, .. }
    ));
    assert_eq!(
        forest.binding().datatypes()[0],
        ("age".to_string(), "INT64")
    );
    let (xgb, _) = exported.import("xgboost");
    assert!(matches!(
        xgb.binding().inputs,
        Inputs::Matrix {
            elem: Elem::F32,
            ..
        }
    ));
    assert!(xgb.binding().datatypes().iter().all(|(_, t)| *t == "FP32"));
    let (zipmap, _) = exported.import("zipmap_text_target");
    assert!(matches!(
        &zipmap.binding().output,
        Output::ZipMap { key: tollgate_ml::onnx::binding::ClassKey::Text(k), .. } if k == "yes"
    ));
    assert_eq!(forest.binding().producer, "skl2onnx");
}

#[test]
fn an_onnx_artifact_round_trips_and_scores_the_same() {
    let exported = exported();
    let (onnx, table) = exported.import("hist_gradient_boosting");
    let rows: Vec<usize> = (0..50).collect();
    let before = onnx
        .score(&TableRows {
            table: &table,
            rows: &rows,
        })
        .unwrap();
    let artifact = Artifact {
        scorer: Scorer::Onnx(onnx),
        meta: ArtifactMeta {
            model: "churn".into(),
            spec_digest: String::new(),
            dataset_digest: String::new(),
            code_commit: String::new(),
            metrics: Default::default(),
            split_seed: 42,
            test_fraction: 0.2,
            train_rows: 0,
            target: "label".into(),
            positive_label: None,
            optimal_threshold: 0.5,
            golden: vec![],
            algorithm: "onnx".into(),
            selection: None,
            training_seconds: 1.0,
        },
        lineage: Lineage {
            origin: Origin::Uploaded,
            code_digest: String::new(),
            model_digest: "abc".into(),
        },
    };
    let bytes = artifact.encode().unwrap();
    let back = Artifact::decode(&bytes).unwrap();
    assert_eq!(back, artifact);
    assert_eq!(back.lineage.origin, Origin::Uploaded);
    assert_eq!(back.format(), "onnx");
    assert_eq!(back.score_rows(&table, &rows).unwrap(), before);
    let one = back.score(&table.record(3)).unwrap();
    assert!((one - before[3]).abs() < 1e-12);
}

#[test]
fn a_model_whose_inputs_do_not_match_the_spec_is_refused_by_name() {
    let exported = exported();
    let bytes = exported.bytes("logistic_regression");
    let mut numeric = names(&NUMERIC);
    numeric.push("region_code".into());
    let err = OnnxModel::import(
        bytes.clone(),
        &numeric,
        &names(&CATEGORICAL),
        &Classes::Binary,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no input for feature region_code"), "{err}");
    let numeric: Vec<String> = names(&NUMERIC).into_iter().skip(1).collect();
    let err = OnnxModel::import(bytes, &numeric, &names(&CATEGORICAL), &Classes::Binary)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input age is not a feature of the spec"),
        "{err}"
    );
    // A matrix model with the wrong number of features, and with categorical features.
    let xgb = exported.bytes("xgboost");
    let err = OnnxModel::import(xgb.clone(), &names(&NUMERIC[..3]), &[], &Classes::Binary)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("takes 5 features but the spec lists 3"),
        "{err}"
    );
    let err = OnnxModel::import(
        xgb,
        &names(&NUMERIC),
        &names(&CATEGORICAL),
        &Classes::Binary,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("categorical features (contract, payment_method)"),
        "{err}"
    );
}

#[test]
fn hostile_files_fail_with_a_reason_and_never_panic() {
    let exported = exported();
    let dir = exported.dir.path().join("hostile");
    run_python("hostile_onnx.py", &[&dir]);
    runtime::set_run_deadline(Duration::from_secs(2));
    let x = names(&["x"]);
    let good = exported.bytes("logistic_regression");
    let mut corrupt = good.clone();
    for b in corrupt.iter_mut().skip(20).step_by(7) {
        *b ^= 0x5a;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("corrupt", corrupt),
        ("empty", Vec::new()),
        (
            "not onnx",
            b"PAR1 this is a parquet file, not a model".to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let err = OnnxModel::import(
            bytes,
            &names(&NUMERIC),
            &names(&CATEGORICAL),
            &Classes::Binary,
        )
        .unwrap_err();
        assert!(
            matches!(err, OnnxError::Load(_) | OnnxError::Binding(_)),
            "{name}: {err}"
        );
    }
    for (name, expected) in [
        ("unknown_operator", "FrobnicateEverything"),
        ("cycle", "not acyclic"),
    ] {
        let bytes = std::fs::read(dir.join(format!("{name}.onnx"))).unwrap();
        let err = OnnxModel::import(bytes, &x, &[], &Classes::Binary).unwrap_err();
        assert!(matches!(err, OnnxError::Load(_)), "{name}: {err}");
        assert!(err.to_string().contains(expected), "{name}: {err}");
    }
    let table = Table {
        numeric: vec![vec![Some(0.5); 4]],
        categorical: vec![],
        target: vec![0, 1, 0, 1],
        coerced: vec![],
    };
    let rows = [0, 1, 2, 3];
    for (name, expected) in [
        ("huge_tensor", "failed while scoring"),
        ("endless_loop", "ran past the 2-second limit"),
    ] {
        let bytes = std::fs::read(dir.join(format!("{name}.onnx"))).unwrap();
        let model = OnnxModel::import(bytes, &x, &[], &Classes::Binary).unwrap();
        let started = std::time::Instant::now();
        let err = model
            .score(&TableRows {
                table: &table,
                rows: &rows,
            })
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{name}: {err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{name}");
    }
    // Declared dimensions are only declarations: the rows given decide the tensor.
    let bytes = std::fs::read(dir.join("huge_dimensions.onnx")).unwrap();
    match OnnxModel::import(bytes, &x, &[], &Classes::Binary) {
        Err(e) => assert!(
            matches!(e, OnnxError::Binding(_) | OnnxError::Load(_)),
            "{e}"
        ),
        Ok(model) => {
            let err = model.score(&TableRows {
                table: &table,
                rows: &rows,
            });
            assert!(err.is_err(), "a [2^40, 2^40] input scored 4 rows: {err:?}");
        }
    }
}
