//! Triton's own HTTP client against a model server process: with binary tensor data (its
//! default) and with JSON tensors it gets the same probabilities, and they are the ones
//! Tollgate's client gets.

use tollgate_e2e::{Pipeline, free_port};

use super::security::python;
use super::serving::{Server, v1_served_in_production};

/// Asks the server through `tritonclient.http`, once with JSON tensors and once with
/// binary ones: `{"json": [...], "binary": [...]}`.
const ASK: &str = r#"
import json, sys
import numpy as np
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
print(json.dumps({"json": ask(False), "binary": ask(True)}))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn tritons_client_gets_the_same_probabilities_with_binary_and_json_tensors() {
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
    let asked = serde_json::json!({"url": addr, "numeric": numeric, "categorical": categorical});
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
    for how in ["json", "binary"] {
        let got: Vec<f64> = serde_json::from_value(theirs[how].clone()).unwrap();
        assert_eq!(got, ours, "{how} tensors");
    }
}
