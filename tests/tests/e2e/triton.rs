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

/// Every message of `GRPCInferenceService`, each field filled (repeated fields twice, a
/// map entry, the last field of a oneof), built with tritonclient's own generated classes:
/// `mode` `make` prints them as base64; `check` reads the same messages back from stdin,
/// as re-encoded elsewhere, and prints the names of those that changed.
const MESSAGES: &str = r#"
import base64, json, sys
from google.protobuf.descriptor import FieldDescriptor as F
from tritonclient.grpc import service_pb2 as s
NAMES = ["ServerLiveRequest", "ServerLiveResponse", "ServerReadyRequest", "ServerReadyResponse",
         "ModelReadyRequest", "ModelReadyResponse", "ServerMetadataRequest", "ServerMetadataResponse",
         "ModelMetadataRequest", "ModelMetadataResponse", "ModelInferRequest", "ModelInferResponse",
         "InferParameter", "InferTensorContents"]
def scalar(f, k):
    t = f.type
    if t == F.TYPE_BOOL: return True
    if t in (F.TYPE_STRING,): return f"{f.name}-{k}"
    if t == F.TYPE_BYTES: return f"{f.name}-{k}".encode()
    if t in (F.TYPE_FLOAT, F.TYPE_DOUBLE): return f.number + 0.5 + k
    if t in (F.TYPE_INT32, F.TYPE_INT64, F.TYPE_SINT32, F.TYPE_SINT64): return -(f.number * 1000 + k)
    return f.number * 1000 + k
def fill(m):
    oneofs = {}
    for f in m.DESCRIPTOR.fields:
        if f.containing_oneof is not None:
            oneofs[f.containing_oneof.name] = f
            continue
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            fill(getattr(m, f.name)["key-" + f.name])
        elif f.label == F.LABEL_REPEATED:
            for k in range(2):
                if f.message_type is not None: fill(getattr(m, f.name).add())
                else: getattr(m, f.name).append(scalar(f, k))
        elif f.message_type is not None:
            fill(getattr(m, f.name))
        else:
            setattr(m, f.name, scalar(f, 0))
    for f in oneofs.values():
        setattr(m, f.name, scalar(f, 0))
    return m
made = {n: fill(getattr(s, n)()) for n in NAMES}
if sys.argv[1] == "make":
    print(json.dumps({n: base64.b64encode(m.SerializeToString()).decode() for n, m in made.items()}))
else:
    back = json.load(sys.stdin)
    print(json.dumps([n for n, m in made.items() if getattr(s, n).FromString(base64.b64decode(back[n])) != m]))
"#;

/// `message` decoded as `M` and encoded again.
fn reencode<M: prost::Message + Default>(message: &[u8]) -> Vec<u8> {
    M::decode(message).unwrap().encode_to_vec()
}

#[test]
fn the_vendored_proto_reads_and_writes_every_field_of_tritonclients_messages() {
    use base64::Engine as _;
    use tollgate_proto::inference as v2;
    let b64 = base64::engine::general_purpose::STANDARD;
    let made = std::process::Command::new(python())
        .args(["-c", MESSAGES, "make"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let made: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&made.stdout).unwrap();
    let mut back = serde_json::Map::new();
    for (name, encoded) in &made {
        let bytes = b64.decode(encoded.as_str().unwrap()).unwrap();
        assert!(!bytes.is_empty() || name.ends_with("Request"), "{name}");
        let again = match name.as_str() {
            "ServerLiveRequest" => reencode::<v2::ServerLiveRequest>(&bytes),
            "ServerLiveResponse" => reencode::<v2::ServerLiveResponse>(&bytes),
            "ServerReadyRequest" => reencode::<v2::ServerReadyRequest>(&bytes),
            "ServerReadyResponse" => reencode::<v2::ServerReadyResponse>(&bytes),
            "ModelReadyRequest" => reencode::<v2::ModelReadyRequest>(&bytes),
            "ModelReadyResponse" => reencode::<v2::ModelReadyResponse>(&bytes),
            "ServerMetadataRequest" => reencode::<v2::ServerMetadataRequest>(&bytes),
            "ServerMetadataResponse" => reencode::<v2::ServerMetadataResponse>(&bytes),
            "ModelMetadataRequest" => reencode::<v2::ModelMetadataRequest>(&bytes),
            "ModelMetadataResponse" => reencode::<v2::ModelMetadataResponse>(&bytes),
            "ModelInferRequest" => reencode::<v2::ModelInferRequest>(&bytes),
            "ModelInferResponse" => reencode::<v2::ModelInferResponse>(&bytes),
            "InferParameter" => reencode::<v2::InferParameter>(&bytes),
            "InferTensorContents" => reencode::<v2::InferTensorContents>(&bytes),
            other => panic!("no message {other} in proto/inference/grpc_predict_v2.proto"),
        };
        back.insert(name.clone(), b64.encode(again).into());
    }
    let mut child = std::process::Command::new(python())
        .args(["-c", MESSAGES, "check"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        stdin
            .write_all(serde_json::Value::Object(back).to_string().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changed: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        changed.is_empty(),
        "lost or changed fields through the vendored proto: {changed:?}"
    );
}
