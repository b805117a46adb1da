//! Unit tests of the parent module: the binding of declared inputs and outputs to a
//! spec's features, without a runtime. Models from the real exporters are tested in
//! `crates/ml/tests/onnx_models.rs`.

use ort::value::{Shape, SymbolicDimensions, TensorElementType as T, ValueType};

use super::binding::*;

fn tensor(ty: T, shape: &[i64]) -> ValueType {
    ValueType::Tensor {
        ty,
        shape: Shape::new(shape.iter().copied()),
        dimension_symbols: SymbolicDimensions::empty(shape.len()),
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn probabilities() -> Vec<Declared> {
    vec![
        ("label".into(), tensor(T::Int64, &[-1])),
        ("probabilities".into(), tensor(T::Float32, &[-1, 2])),
    ]
}

fn bind(numeric: &[&str], categorical: &[&str], inputs: Vec<Declared>) -> Result<Binding, String> {
    Binding::new(
        &names(numeric),
        &names(categorical),
        &inputs,
        &probabilities(),
        &Classes::Binary,
    )
}

#[test]
fn one_input_per_column_binds_by_name_whatever_the_order() {
    let b = bind(
        &["age", "charges"],
        &["contract"],
        vec![
            ("contract".into(), tensor(T::String, &[-1, 1])),
            ("charges".into(), tensor(T::Float64, &[-1, 1])),
            ("age".into(), tensor(T::Int64, &[-1])),
        ],
    )
    .unwrap();
    let Inputs::PerColumn(columns) = &b.inputs else {
        panic!("{:?}", b.inputs)
    };
    let age = columns.iter().find(|c| c.name == "age").unwrap();
    assert_eq!(
        (age.feature, age.elem, age.rank),
        (Feature::Numeric(0), Elem::I64, 1)
    );
    assert_eq!(
        b.datatypes(),
        [
            ("age".to_string(), "INT64"),
            ("charges".to_string(), "FP64"),
            ("contract".to_string(), "BYTES")
        ]
    );
    assert_eq!(
        b.output,
        Output::Matrix {
            name: "probabilities".into(),
            elem: Elem::F32,
            column: 1
        }
    );
}

#[test]
fn one_float_matrix_takes_the_numeric_features_in_order() {
    let b = bind(
        &["a", "b", "c"],
        &[],
        vec![("input".into(), tensor(T::Float32, &[-1, 3]))],
    )
    .unwrap();
    assert_eq!(
        b.inputs,
        Inputs::Matrix {
            name: "input".into(),
            elem: Elem::F32
        }
    );
    let dynamic = bind(
        &["a", "b"],
        &[],
        vec![("x".into(), tensor(T::Float32, &[-1, -1]))],
    );
    assert!(dynamic.is_ok());
}

#[test]
fn mismatches_name_what_is_missing_and_what_is_extra() {
    let err = bind(
        &["age", "charges"],
        &[],
        vec![
            ("age".into(), tensor(T::Float32, &[-1, 1])),
            ("region".into(), tensor(T::String, &[-1, 1])),
        ],
    )
    .unwrap_err();
    assert!(
        err.contains("no input for feature charges of the spec"),
        "{err}"
    );
    assert!(
        err.contains("input region is not a feature of the spec"),
        "{err}"
    );
    let err = bind(
        &["age"],
        &[],
        vec![("age".into(), tensor(T::String, &[-1, 1]))],
    )
    .unwrap_err();
    assert!(err.contains("age is a numeric feature"), "{err}");
    let err = bind(
        &["age"],
        &[],
        vec![("age".into(), tensor(T::Float32, &[-1, 3]))],
    )
    .unwrap_err();
    assert!(err.contains("shape [-1, 3]"), "{err}");
    let err = bind(&["a"], &[], vec![("x".into(), tensor(T::Int64, &[-1, 1]))]).unwrap_err();
    assert!(err.contains("nor a float tensor"), "{err}");
}

#[test]
fn the_positive_class_follows_the_labels_the_model_was_trained_on() {
    let text = Classes::Text {
        positive: "churned".into(),
        sorted: vec!["churned".into(), "stayed".into()],
    };
    let inputs = vec![("x".into(), tensor(T::Float32, &[-1, 1]))];
    // Trained on the text labels: the positive label's place among them, sorted.
    let outputs = vec![
        ("label".into(), tensor(T::String, &[-1])),
        ("probabilities".into(), tensor(T::Float32, &[-1, 2])),
    ];
    let b = Binding::new(&names(&["x"]), &[], &inputs, &outputs, &text).unwrap();
    assert!(matches!(b.output, Output::Matrix { column: 0, .. }));
    // Trained on 0/1: the positive class second.
    let b = Binding::new(&names(&["x"]), &[], &inputs, &probabilities(), &text).unwrap();
    assert!(matches!(b.output, Output::Matrix { column: 1, .. }));
    // A ZipMap keyed by text: the positive label.
    let zipmap = vec![(
        "output_probability".into(),
        ValueType::Sequence(Box::new(ValueType::Map {
            key: T::String,
            value: T::Float32,
        })),
    )];
    let b = Binding::new(&names(&["x"]), &[], &inputs, &zipmap, &text).unwrap();
    assert_eq!(
        b.output,
        Output::ZipMap {
            name: "output_probability".into(),
            key: ClassKey::Text("churned".into())
        }
    );
    // One [N] tensor is the probability itself; nothing usable is an error that says so.
    let vector = vec![("p".into(), tensor(T::Float32, &[-1]))];
    let b = Binding::new(&names(&["x"]), &[], &inputs, &vector, &Classes::Binary).unwrap();
    assert!(matches!(b.output, Output::Vector { .. }));
    let none = vec![("label".into(), tensor(T::Int64, &[-1]))];
    let err = Binding::new(&names(&["x"]), &[], &inputs, &none, &Classes::Binary).unwrap_err();
    assert!(err.contains("no probability output"), "{err}");
}
