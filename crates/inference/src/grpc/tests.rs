use serde_json::json;
use tollgate_proto::inference::{
    InferTensorContents, ModelInferRequest, model_infer_request::InferInputTensor,
};

use super::request_of;

fn input(name: &str, datatype: &str, contents: Option<InferTensorContents>) -> InferInputTensor {
    InferInputTensor {
        name: name.into(),
        datatype: datatype.into(),
        shape: vec![2],
        parameters: Default::default(),
        contents,
    }
}

#[test]
fn typed_contents_become_the_http_requests_values() {
    let r = ModelInferRequest {
        model_name: "churn".into(),
        id: "req-1".into(),
        inputs: vec![
            input(
                "tenure",
                "FP64",
                Some(InferTensorContents {
                    fp64_contents: vec![1.5, f64::NAN],
                    ..Default::default()
                }),
            ),
            input(
                "calls",
                "INT32",
                Some(InferTensorContents {
                    int_contents: vec![3, -1],
                    ..Default::default()
                }),
            ),
            input(
                "plan",
                "BYTES",
                Some(InferTensorContents {
                    bytes_contents: vec![b"basic".to_vec(), b"pro".to_vec()],
                    ..Default::default()
                }),
            ),
        ],
        ..Default::default()
    };
    let http = request_of(&r).unwrap();
    assert_eq!(http.id.as_deref(), Some("req-1"));
    let data: Vec<_> = http.inputs.iter().map(|i| i.data.clone()).collect();
    assert_eq!(
        data,
        [json!([1.5, null]), json!([3, -1]), json!(["basic", "pro"])],
        "a NaN is a missing value"
    );
}

#[test]
fn raw_contents_are_read_per_input_and_must_match_the_inputs() {
    let mut raw_text = Vec::new();
    for t in ["a", "bc"] {
        raw_text.extend((t.len() as u32).to_le_bytes());
        raw_text.extend(t.as_bytes());
    }
    let raw_numbers: Vec<u8> = [2.0f64, 4.5].iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut r = ModelInferRequest {
        inputs: vec![input("x", "FP64", None), input("s", "BYTES", None)],
        raw_input_contents: vec![raw_numbers, raw_text],
        ..Default::default()
    };
    let http = request_of(&r).unwrap();
    assert_eq!(http.inputs[0].data, json!([2.0, 4.5]));
    assert_eq!(http.inputs[1].data, json!(["a", "bc"]));

    r.raw_input_contents.pop();
    let e = request_of(&r).unwrap_err().to_string();
    assert!(e.contains("1 entries for 2 inputs"), "{e}");
}
