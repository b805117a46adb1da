//! Triton's own clients against a model server process: its HTTP client with binary
//! tensor data (its default) and with JSON tensors, and its gRPC client on the protocol's
//! `GRPCInferenceService`, get the same probabilities, the ones Tollgate's client gets.

use tollgate_e2e::{Pipeline, free_port};

use super::security::python;
use super::serving::{Server, v1_served_in_production};

/// Asks the server through `tritonclient.http`, once with JSON tensors and once with
/// binary ones, and through `tritonclient.grpc`: `{"json": [...], "binary": [...],
/// "grpc": [...], "grpc_health": [...], "grpc_metadata": {...}}`.
const ASK: &str = r#"
import json, sys
import numpy as np
import tritonclient.grpc as grpc
import tritonclient.http as http
d = json.load(sys.stdin)
client = http.InferenceServerClient(d["url"])
def ask(binary):
    inputs = []
    for name, values in d["numeric"].items():
        i = http.InferInput(name, [len(values)], "FP64")
        i.set_data_from_numpy(np.array(values, dtype=np.float64), binary_data=binary)
        inputs.append(i)
    for name, values in d["categorical"].items():
        i = http.InferInput(name, [len(values)], "BYTES")
        i.set_data_from_numpy(np.array(values, dtype=np.object_), binary_data=binary)
        inputs.append(i)
    wanted = [http.InferRequestedOutput("probability", binary_data=binary)]
    return client.infer("churn", inputs, outputs=wanted).as_numpy("probability").tolist()
g = grpc.InferenceServerClient(d["grpc"])
health = [g.is_server_live(), g.is_server_ready(), g.is_model_ready("churn")]
meta = g.get_model_metadata("churn", as_json=True)
server = g.get_server_metadata(as_json=True)
inputs = []
for name, values in d["numeric"].items():
    i = grpc.InferInput(name, [len(values)], "FP64")
    i.set_data_from_numpy(np.array(values, dtype=np.float64))
    inputs.append(i)
for name, values in d["categorical"].items():
    i = grpc.InferInput(name, [len(values)], "BYTES")
    i.set_data_from_numpy(np.array(values, dtype=np.object_))
    inputs.append(i)
answer = g.infer("churn", inputs, outputs=[grpc.InferRequestedOutput("probability")])
print(json.dumps({
    "json": ask(False), "binary": ask(True),
    "grpc": answer.as_numpy("probability").tolist(),
    "grpc_version": answer.get_response().model_version,
    "grpc_health": health,
    "grpc_metadata": {"inputs": sorted(i["name"] for i in meta["inputs"]), "server": server["name"]},
}))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn tritons_clients_get_the_same_probabilities_over_grpc_and_with_binary_and_json_tensors() {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let p = Pipeline::start().await.unwrap();
    let server = Server::spawn(&p, &addr, "churn@Production", &p.dir.path().join("s.log"));
    let (columns, rows) = v1_served_in_production(&p, &server).await;
    let rows = &rows[..40];
    let ours = server
        .client
        .probabilities("churn", None, &columns, rows)
        .await
        .unwrap();

    let mut numeric = serde_json::Map::new();
    for (j, name) in columns.numeric.iter().enumerate() {
        let values: Vec<f64> = rows.iter().map(|r| r.numeric[j].unwrap()).collect();
        numeric.insert(name.clone(), values.into());
    }
    let mut categorical = serde_json::Map::new();
    for (j, name) in columns.categorical.iter().enumerate() {
        let values: Vec<String> = rows
            .iter()
            .map(|r| r.categorical[j].clone().unwrap())
            .collect();
        categorical.insert(name.clone(), values.into());
    }
    let asked = serde_json::json!({
        "url": addr, "grpc": server.grpc_addr, "numeric": numeric, "categorical": categorical,
    });
    let mut child = std::process::Command::new(python())
        .args(["-c", ASK])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(asked.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tritonclient: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for how in ["json", "binary", "grpc"] {
        let got: Vec<f64> = serde_json::from_value(theirs[how].clone()).unwrap();
        assert_eq!(got, ours, "{how} tensors");
    }
    assert_eq!(theirs["grpc_version"], "1");
    assert_eq!(theirs["grpc_health"], serde_json::json!([true, true, true]));
    let mut features: Vec<&String> = columns.numeric.iter().chain(&columns.categorical).collect();
    features.sort();
    assert_eq!(
        theirs["grpc_metadata"],
        serde_json::json!({"inputs": features, "server": "tollgate-server"})
    );
}
