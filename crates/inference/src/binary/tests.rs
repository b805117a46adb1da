use super::*;

/// A request with `json` as its JSON part and `raw` after it.
fn body(json: &Value, raw: &[u8]) -> (Vec<u8>, usize) {
    let mut b = serde_json::to_vec(json).unwrap();
    let n = b.len();
    b.extend_from_slice(raw);
    (b, n)
}

#[test]
fn binary_inputs_read_as_the_values_they_encode() {
    let mut raw = Vec::new();
    raw.extend(1.5f32.to_le_bytes());
    raw.extend(f32::NAN.to_le_bytes());
    raw.extend(7i64.to_le_bytes());
    raw.extend(9i64.to_le_bytes());
    for text in ["one-year", "ü"] {
        raw.extend((text.len() as u32).to_le_bytes());
        raw.extend(text.as_bytes());
    }
    let json = serde_json::json!({"inputs": [
        {"name": "a", "shape": [2, 1], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
        {"name": "b", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}},
        {"name": "c", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 4 + 8 + 4 + 2}},
        {"name": "d", "shape": [1], "datatype": "FP64", "data": [2.0]},
    ]});
    let (b, n) = body(&json, &raw);
    let r = request(&b, n).unwrap();
    assert_eq!(r.inputs[0].data, serde_json::json!([1.5, null]));
    assert_eq!(r.inputs[1].data, serde_json::json!([7, 9]));
    assert_eq!(r.inputs[2].data, serde_json::json!(["one-year", "ü"]));
    assert_eq!(r.inputs[3].data, serde_json::json!([2.0]));
}

#[test]
fn sizes_that_do_not_add_up_are_clear_errors() {
    let json = serde_json::json!({"inputs": [
        {"name": "a", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}},
    ]});
    let message = |b: &[u8], n: usize| match request(b, n) {
        Err(InferError::BadRequest(m)) => m,
        other => panic!("{other:?}"),
    };
    let (short, n) = body(&json, &[0; 4]);
    assert!(message(&short, n).contains("more than the 4 bytes left"));
    let (long, n) = body(&json, &[0; 12]);
    assert!(message(&long, n).contains("4 bytes of binary data follow"));
    assert!(message(&long, long.len() + 1).contains("has only"));
    let fp16 = serde_json::json!({"inputs": [
        {"name": "a", "shape": [1], "datatype": "FP16", "parameters": {"binary_data_size": 2}},
    ]});
    let (b, n) = body(&fp16, &[0; 2]);
    assert!(message(&b, n).contains("send it as JSON"));
    let cut = serde_json::json!({"inputs": [
        {"name": "c", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}},
    ]});
    let mut raw = 9u32.to_le_bytes().to_vec();
    raw.extend(b"ab");
    let (b, n) = body(&cut, &raw);
    assert!(message(&b, n).contains("cut off"));
}

#[test]
fn outputs_asked_for_as_binary_come_back_after_the_json() {
    let answer = InferResponse {
        model_name: "churn".into(),
        model_version: Some("3".into()),
        id: Some("r1".into()),
        outputs: vec![
            crate::protocol::OutputTensor {
                name: "probability".into(),
                shape: vec![2],
                datatype: "FP64".into(),
                data: vec![Value::from(0.25), Value::from(0.75)],
            },
            crate::protocol::OutputTensor {
                name: "prediction".into(),
                shape: vec![2],
                datatype: "INT64".into(),
                data: vec![Value::from(0), Value::from(1)],
            },
        ],
    };
    let asked: InferRequest = serde_json::from_value(serde_json::json!({"inputs": [],
        "outputs": [{"name": "probability", "parameters": {"binary_data": true}}, {"name": "prediction"}]}))
    .unwrap();
    let (body, n) = response(&asked, &answer).unwrap();
    let head: Value = serde_json::from_slice(&body[..n]).unwrap();
    assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 16);
    assert_eq!(head["outputs"][1]["data"], serde_json::json!([0, 1]));
    let p: Vec<f64> = body[n..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(p, [0.25, 0.75]);
    // Every output, with the request's flag; none without it.
    let all: InferRequest = serde_json::from_value(
        serde_json::json!({"inputs": [], "parameters": {"binary_data_output": true}}),
    )
    .unwrap();
    let (body, n) = response(&all, &answer).unwrap();
    assert_eq!(body.len() - n, 32);
    assert!(response(&InferRequest::default(), &answer).is_none());
}
