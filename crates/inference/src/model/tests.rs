//! Unit tests of the parent module, the catalog and the HTTP routes, on a model trained
//! on generated churn data and served on a loopback port.

use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use tollgate_ml::{
    artifact::{Artifact, Score},
    synth::{SynthOptions, churn},
};

use super::*;
use crate::{
    Catalog, Entry, Selector,
    client::{Client, ClientError, request_for},
    http::{Loopback, Unobserved, router, serve},
};

const SPEC: &str = include_str!("../../../../examples/churn/tollgate.yaml");

fn artifact() -> Artifact {
    static TRAINED: OnceLock<Artifact> = OnceLock::new();
    TRAINED
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("churn.parquet");
            let mut df = churn(SynthOptions {
                rows: 2_000,
                seed: 3,
                dirty: false,
            })
            .unwrap();
            tollgate_ml::data::write(&mut df, &path).unwrap();
            let spec = tollgate_spec::ModelSpec::parse(SPEC).unwrap();
            tollgate_ml::train::train(&spec, SPEC, &path, "c")
                .unwrap()
                .artifact
        })
        .clone()
}

fn served(version: u32) -> ServedModel {
    ServedModel::new("churn", version, "Production", artifact(), 0.5)
}

fn golden() -> Vec<Record> {
    tollgate_ml::grade::golden_records(&artifact())
}

fn request(body: Value) -> InferRequest {
    serde_json::from_value(body).unwrap()
}

fn one_row() -> Value {
    json!({"inputs": [
        {"name": "age", "shape": [1], "datatype": "FP64", "data": [40.0]},
        {"name": "tenure_months", "shape": [1], "datatype": "INT64", "data": [3]},
        {"name": "monthly_charges", "shape": [1], "datatype": "FP64", "data": [80.5]},
        {"name": "total_charges", "shape": [1], "datatype": "FP64", "data": [241.5]},
        {"name": "support_calls", "shape": [1, 1], "datatype": "FP32", "data": [[4]]},
        {"name": "contract", "shape": [1], "datatype": "BYTES", "data": ["month-to-month"]},
        {"name": "payment_method", "shape": [1], "datatype": "BYTES", "data": [null]},
    ]})
}

fn bad_request(body: Value) -> String {
    match served(1).infer(&request(body)) {
        Err(InferError::BadRequest(m)) => m,
        other => panic!("expected a bad request, got {other:?}"),
    }
}

#[test]
fn a_batch_scores_as_the_artifact_does_with_predictions_at_the_threshold() {
    let model = served(1);
    let records = golden();
    let scored = model
        .infer(&request_for(model.columns(), &records))
        .unwrap();
    assert_eq!(scored.records, records);
    assert_eq!(scored.record_ids().len(), records.len());
    assert!(scored.record_ids()[1].ends_with(":1"));
    let response = scored.response;
    assert_eq!(response.model_version.as_deref(), Some("1"));
    let p = response.numbers(crate::protocol::PROBABILITY).unwrap();
    let want: Vec<f64> = model.artifact.score_records(&records).unwrap();
    assert_eq!(p, want);
    let predictions = response.numbers(crate::protocol::PREDICTION).unwrap();
    for (p, y) in p.iter().zip(&predictions) {
        assert_eq!(*y, if *p >= 0.5 { 1.0 } else { 0.0 });
    }
}

#[test]
fn every_answer_has_an_id_the_request_s_or_a_new_one() {
    let model = served(1);
    let mut asked = one_row();
    asked["id"] = json!("req-42");
    let echoed = model.infer(&request(asked)).unwrap();
    assert_eq!(echoed.response.id.as_deref(), Some("req-42"));
    assert_eq!(echoed.record_ids(), ["req-42"]);
    let first = model.infer(&request(one_row())).unwrap().response;
    let second = model.infer(&request(one_row())).unwrap().response;
    let (a, b) = (first.id.unwrap(), second.id.unwrap());
    assert_eq!(a.len(), 26, "a ULID: {a}");
    assert_ne!(a, b);
}

#[test]
fn nested_data_nulls_and_integer_types_are_accepted() {
    let scored = served(1).infer(&request(one_row())).unwrap();
    let (response, records) = (scored.response, scored.records);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].numeric[1], Some(3.0));
    assert_eq!(records[0].numeric[4], Some(4.0));
    assert_eq!(records[0].categorical[1], None);
    assert_eq!(response.outputs.len(), 2);
}

#[test]
fn a_missing_input_is_named() {
    let mut body = one_row();
    body["inputs"].as_array_mut().unwrap().remove(1);
    assert_eq!(bad_request(body), "missing input tenure_months");
}

#[test]
fn wrong_types_are_refused_with_the_input_named() {
    let mut body = one_row();
    body["inputs"][0]["datatype"] = json!("BYTES");
    assert!(bad_request(body).contains("input age is numeric"));
    let mut body = one_row();
    body["inputs"][5]["datatype"] = json!("FP64");
    assert!(bad_request(body).contains("input contract is categorical"));
    let mut body = one_row();
    body["inputs"][0]["data"] = json!(["forty"]);
    assert!(bad_request(body).contains("value 0 is \"forty\", not a number"));
}

#[test]
fn an_empty_batch_a_wrong_shape_and_an_unknown_input_are_refused() {
    let mut body = one_row();
    for input in body["inputs"].as_array_mut().unwrap() {
        input["shape"] = json!([0]);
        input["data"] = json!([]);
    }
    assert!(bad_request(body).starts_with("empty batch"));
    let mut body = one_row();
    body["inputs"][0]["shape"] = json!([2]);
    assert!(bad_request(body).contains("shape [2] says 2 values, data holds 1"));
    let mut body = one_row();
    body["inputs"][0]["name"] = json!("agee");
    assert!(bad_request(body).contains("unknown input \"agee\""));
    let mut body = one_row();
    body["outputs"] = json!([{"name": "logits"}]);
    assert!(bad_request(body).contains("unknown output \"logits\""));
}

#[test]
fn entries_parse_stages_in_any_case_and_aliases() {
    let e: Entry = "churn@production".parse().unwrap();
    assert_eq!(e.selector, Selector::Stage("Production".into()));
    assert_eq!(e.uri(), "models:/churn/Production");
    let e: Entry = "churn@champion".parse().unwrap();
    assert_eq!(e.uri(), "models:/churn@champion");
    assert!("churn".parse::<Entry>().is_err());
    assert!("churn@".parse::<Entry>().is_err());
}

#[test]
fn the_catalog_finds_the_first_entry_or_a_version_and_swaps_whole() {
    let catalog = Catalog::new(vec![
        "churn@Production".parse().unwrap(),
        "churn@Staging".parse().unwrap(),
    ]);
    assert_eq!(
        catalog.find("churn", None).unwrap_err(),
        InferError::NotReady("churn".into())
    );
    assert_eq!(catalog.find("fraud", None).unwrap_err().status(), 404);
    catalog.set(1, Arc::new(served(2)));
    assert!(!catalog.ready());
    assert_eq!(catalog.find("churn", Some("2")).unwrap().version, 2);
    catalog.set(0, Arc::new(served(1)));
    assert!(catalog.ready());
    assert_eq!(catalog.find("churn", None).unwrap().version, 1);
    assert_eq!(catalog.versions("churn"), vec![1, 2]);
    let held = catalog.find("churn", None).unwrap();
    catalog.set(0, Arc::new(served(3)));
    assert_eq!(held.version, 1, "a request keeps the version it took");
    assert_eq!(catalog.find("churn", None).unwrap().version, 3);
    assert_eq!(catalog.find("churn", Some("1")).unwrap_err().status(), 404);
}

async fn status_of(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_routes_answer_as_the_protocol_defines() {
    let catalog = Arc::new(Catalog::new(vec![
        "churn@Production".parse().unwrap(),
        "churn@Staging".parse().unwrap(),
    ]));
    catalog.set(0, Arc::new(served(4)));
    let stop = tokio_util::sync::CancellationToken::new();
    let (addr, _) = serve(
        "127.0.0.1:0",
        router(catalog.clone(), Arc::new(Unobserved), 4096),
        stop.clone(),
    )
    .await
    .unwrap();
    let base = format!("http://{addr}");
    assert_eq!(status_of(&format!("{base}/v2/health/live")).await.0, 200);
    let (status, body) = status_of(&format!("{base}/v2/health/ready")).await;
    assert_eq!((status, body["ready"].clone()), (503, json!(false)));
    let (status, meta) = status_of(&format!("{base}/v2/models/churn")).await;
    assert_eq!(status, 200);
    assert_eq!(meta["versions"], json!(["4"]));
    assert_eq!(meta["inputs"][0]["name"], json!("age"));
    assert_eq!(meta["inputs"][5]["datatype"], json!("BYTES"));
    let (status, body) = status_of(&format!("{base}/v2/models/fraud")).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown model \"fraud\"")
    );
    assert_eq!(
        status_of(&format!("{base}/v2/models/churn/versions/4/ready"))
            .await
            .0,
        200
    );

    let client = Client::new(&base);
    let records = golden();
    let columns = served(4).columns().clone();
    let p = client
        .probabilities("churn", Some(4), &columns, &records[..3])
        .await
        .unwrap();
    let want: Vec<f64> = artifact().score_records(&records[..3]).unwrap();
    for (a, b) in p.iter().zip(&want) {
        assert!((a - b).abs() < 1e-12);
    }
    let big = request_for(&columns, &vec![records[0].clone(); 200]);
    match client.infer("churn", None, &big).await {
        Err(ClientError::Status {
            status, message, ..
        }) => {
            assert_eq!(status, 413);
            assert!(message.contains("4096-byte limit"), "{message}");
        }
        other => panic!("expected 413, got {other:?}"),
    }
    let garbage = reqwest::Client::new()
        .post(format!("{base}/v2/models/churn/infer"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 400);
    let body: Value = garbage.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not an inference request")
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_server_times_round_trips() {
    let loopback = Loopback::serve(served(1)).await.unwrap();
    let model = served(1);
    let times = loopback
        .client
        .round_trips("churn", Some(1), model.columns(), &golden(), 20)
        .await
        .unwrap();
    assert_eq!(times.len(), 20);
    assert!(times.iter().all(|t| *t > 0.0));
}
