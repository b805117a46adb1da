//! Who may do what at the registry, enforced by tokens: a pipeline whose registry checks
//! a token file, each service calling with a token of its own role, and every refusal asserted
//! by its exact gRPC status.

use tollgate_e2e::{Pipeline, example_spec, free_port, processes::succeeded};
use tollgate_proto::{
    ApprovalRequest, ListVersionsRequest, RecordGateRequest, ResolveRequest, TriggerKind, Verdict,
};
use tollgate_service::tokens::{Role, TokenFile};
use tonic::Code;

use super::registry::{approve, is_model_plan, wait_run};

/// A token file with one token per (identity, role); returns the tokens in that order.
pub(crate) fn tokens(path: &std::path::Path, who: &[(&str, Role)]) -> Vec<String> {
    let mut file = TokenFile::default();
    let made = who
        .iter()
        .map(|(identity, role)| file.add(identity, *role, String::new()).unwrap())
        .collect();
    file.save(path).unwrap();
    made
}

pub(crate) fn refusal<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let status = r.unwrap_err();
    (status.code(), status.message().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_listed_approver_with_a_valid_token_approves_and_the_audit_records_the_token() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("tokens.toml");
    let t = tokens(
        &file,
        &[
            ("alice", Role::Approver),
            ("mallory", Role::Approver),
            ("vera", Role::Viewer),
            ("github", Role::Ci),
            ("trainer", Role::Trainer),
            ("gate", Role::Gate),
            ("promoter", Role::Promoter),
            ("data-validator", Role::Viewer),
        ],
    );
    let (alice, mallory, viewer, ci) = (&t[0], &t[1], &t[2], &t[3]);
    let dashboard = format!("127.0.0.1:{}", free_port().unwrap());
    let mut p = Pipeline::start_hosted(|h| {
        h.tokens_file = Some(file.clone());
        for (i, service) in ["trainer", "gate", "promoter", "data-validator"]
            .iter()
            .enumerate()
        {
            h.service_tokens
                .insert(service.to_string(), t[4 + i].clone());
        }
        h.dashboard_addr = dashboard.clone();
    })
    .await
    .unwrap();
    p.token = viewer.clone();

    // The services work with their own tokens: v1 is trained, registered, gated,
    // promoted and integration-tested.
    let data = p.dataset("churn.parquet", 3_000, 51, false).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    wait_run(&p, "model plan of v1", |r| is_model_plan(r, 1)).await;

    // No token, a wrong one: Unauthenticated, whatever the call.
    let (code, message) = refusal(
        p.registry_with("")
            .unwrap()
            .approve(approve(1, "alice"))
            .await,
    );
    assert_eq!(code, Code::Unauthenticated, "{message}");
    assert!(message.contains("no bearer token"), "{message}");
    let (code, message) = refusal(
        p.registry_with("tg_0123")
            .unwrap()
            .list_versions(ListVersionsRequest::default())
            .await,
    );
    assert_eq!(code, Code::Unauthenticated, "{message}");
    assert!(message.contains("not valid"), "{message}");

    // A viewer reads, and cannot approve.
    let mut as_viewer = p.registry_with(viewer).unwrap();
    let listed = as_viewer
        .list_versions(ListVersionsRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.into_inner().versions.len(), 1);
    let (code, message) = refusal(as_viewer.approve(approve(1, "")).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(
        message.contains("vera (role viewer) may not approve"),
        "{message}"
    );

    // CI may not record gate decisions (nor register versions): those are services'.
    let (code, message) = refusal(
        p.registry_with(ci)
            .unwrap()
            .record_gate(RecordGateRequest {
                model: "churn".into(),
                version: 1,
                ..Default::default()
            })
            .await,
    );
    assert_eq!(code, Code::PermissionDenied, "{message}");

    // An approver not on the spec's list, and alice's token claiming to be bob.
    let (code, message) = refusal(
        p.registry_with(mallory)
            .unwrap()
            .approve(approve(1, ""))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("mallory"), "{message}");
    let mut as_alice = p.registry_with(alice).unwrap();
    let (code, message) = refusal(as_alice.approve(approve(1, "bob")).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(
        message.contains("the token is alice's, not bob's"),
        "{message}"
    );

    // Alice approves: the approval and the audit trail name the token's identity.
    let approval = as_alice
        .approve(ApprovalRequest {
            approver: String::new(),
            ..approve(1, "")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approval.approver, "alice");
    let v1 = as_viewer
        .resolve(ResolveRequest {
            uri: "models:/churn/1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        v1.audit
            .iter()
            .any(|a| a.action == "approved" && a.actor == "alice"),
        "{:?}",
        v1.audit
    );

    // The dashboard's API wants a token too: the header, or ?access_token= for the
    // event stream.
    let api = format!("http://{dashboard}/api/runs");
    let http = reqwest::Client::new();
    assert_eq!(http.get(&api).send().await.unwrap().status().as_u16(), 401);
    let with_header = http.get(&api).bearer_auth(viewer).send().await.unwrap();
    assert_eq!(with_header.status().as_u16(), 200);
    let with_query = http
        .get(format!("{api}?access_token={viewer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_query.status().as_u16(), 200);
    assert_eq!(
        http.get(format!("{api}?access_token=tg_nope"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    // `tollgate token create` adds a digest the running registry honours at once, and
    // the token it prints works as TOLLGATE_TOKEN.
    let out = succeeded(
        std::process::Command::new(super::processes::bin("tollgate"))
            .args(["token", "create", "--identity", "bob", "--role", "approver"])
            .env("TOLLGATE_TOKENS_FILE", &file),
    );
    let bob = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(bob.starts_with("tg_") && bob.len() == 67, "{bob}");
    assert!(!std::fs::read_to_string(&file).unwrap().contains(&bob));
    succeeded(
        std::process::Command::new(super::processes::bin("tollgate"))
            .args(["models", "churn"])
            .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
            .env("TOLLGATE_NATS_URL", &p.nats.url)
            .env("TOLLGATE_TOKEN", &bob),
    );
    let refused = std::process::Command::new(super::processes::bin("tollgate"))
        .args(["models", "churn"])
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .env("TOLLGATE_NATS_URL", &p.nats.url)
        .env("TOLLGATE_TOKEN", "tg_wrong")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("not valid"), "{said}");
    assert!(
        !said.contains("tg_wrong"),
        "the token is not echoed: {said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn datasets_outside_the_data_roots_and_oversized_messages_are_refused() {
    let p = Pipeline::start().await.unwrap();
    let fails_with = |uri: String, reason: &'static str| {
        let p = &p;
        async move {
            let id = p
                .trigger(TriggerKind::Code, "churn", &example_spec(), &uri)
                .await
                .unwrap();
            let run = p.verdict(&id).await.unwrap();
            assert_eq!(run.verdict(), Verdict::Failed, "{uri}: {}", run.reason);
            assert!(run.reason.contains(reason), "{uri}: {}", run.reason);
        }
    };
    // The harness lists the temp directory as the data root.
    fails_with("file:///etc/passwd".into(), "outside the data roots").await;
    let dotted = format!("file://{}/../../etc/passwd", p.dir.path().display());
    fails_with(dotted, "has a '..' segment").await;
    #[cfg(unix)]
    {
        let link = p.dir.path().join("churn.csv");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        let uri = format!("file://{}", link.display());
        fails_with(uri, "outside the data roots").await;
    }

    // A message over the server's max_payload is refused, never delivered.
    let big = vec![0u8; 2 * 1024 * 1024];
    let refused = p
        .bus
        .jetstream()
        .publish(
            tollgate_bus::subjects::stage(tollgate_proto::Stage::Validate),
            big.into(),
        )
        .await;
    let error = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("payload"), "{error}");
}

/// A raw connection signed in as `identity` from `dir`, and the server errors it hears.
async fn signed_in(
    url: &str,
    dir: &std::path::Path,
    identity: tollgate_bus::access::Identity,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let text = std::fs::read_to_string(dir.join(format!("{}.creds", identity.name()))).unwrap();
    let (_, seed) = tollgate_bus::access::parse_creds(&text).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .nkey(seed)
        .custom_inbox_prefix(identity.inbox_prefix())
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(url)
        .await
        .unwrap();
    (client, rx)
}

/// The next server error a connection heard (within 5 s).
async fn violation(errors: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(5), errors.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| "no server error".into())
}

/// Publishes to `subject` and asserts nats-server refused it by name.
async fn refused(
    client: &async_nats::Client,
    errors: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    subject: &str,
) {
    client
        .publish(subject.to_string(), "x".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let said = violation(errors).await;
    assert!(
        said.contains(&format!(
            "Permissions Violation for Publish to \"{subject}\""
        )),
        "{subject}: {said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_nats_identity_publishes_and_reads_only_what_it_needs() {
    use tollgate_bus::access::Identity;
    use tollgate_bus::subjects;
    use tollgate_proto::Stage;
    let creds = tempfile::tempdir().unwrap();
    let p = Pipeline::start_secured(creds.path(), |_| {}).await.unwrap();

    // Every service signed in as itself: a run goes through all of them.
    let data = p.dataset("churn.parquet", 3_000, 61, false).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);

    // Without credentials nothing connects.
    let anonymous = async_nats::connect(&p.nats.url).await;
    assert!(
        anonymous
            .err()
            .is_some_and(|e| e.to_string().contains("authorization violation")),
        "an anonymous connection was accepted"
    );

    // The trainer cannot hand a run to promote: only the gate grades its way there.
    let (trainer, mut errors) = signed_in(&p.nats.url, creds.path(), Identity::Trainer).await;
    refused(&trainer, &mut errors, &subjects::stage(Stage::Promote)).await;

    // CI publishes triggers, nothing else: no stage, no key-value write, no other run.
    let (ci, mut errors) = signed_in(&p.nats.url, creds.path(), Identity::Ci).await;
    refused(&ci, &mut errors, &subjects::stage(Stage::Validate)).await;
    let spec_key = format!(
        "$KV.{}.{}",
        subjects::Bucket::Specs.name(),
        subjects::spec_keys::current("churn")
    );
    refused(&ci, &mut errors, &spec_key).await;
    let other = subjects::run_events(&run.run_id.parse().unwrap());
    let _sub = ci.subscribe(other.clone()).await.unwrap();
    ci.flush().await.unwrap();
    let said = violation(&mut errors).await;
    assert!(
        said.contains(&format!(
            "Permissions Violation for Subscription to \"{other}\""
        )),
        "{said}"
    );

    // A viewer reads and publishes nothing, not even a trigger.
    let (viewer, mut errors) = signed_in(&p.nats.url, creds.path(), Identity::Viewer).await;
    refused(
        &viewer,
        &mut errors,
        &subjects::trigger(TriggerKind::Manual),
    )
    .await;

    // And CI's own run: `tollgate publish --wait` as ci follows it through the inbox the
    // registry relays its events to, and exits by the verdict.
    let out = std::process::Command::new(super::processes::bin("tollgate"))
        .args([
            "publish",
            "code",
            "--spec",
            tollgate_e2e::workspace_root()
                .join("examples/churn/tollgate.yaml")
                .to_str()
                .unwrap(),
            "--dataset",
            data.to_str().unwrap(),
            "--wait",
            "--timeout",
            "60",
        ])
        .env("TOLLGATE_NATS_URL", &p.nats.url)
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .env("TOLLGATE_NATS_CREDS", creds.path().join("ci.creds"))
        .env("TOLLGATE_DATA_DIR", creds.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("verdict: PASSED"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_serves_tls_when_given_a_certificate_and_clients_trust_only_its_ca() {
    let p = Pipeline::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(tollgate_stack::services::registry::serve(
        tollgate_stack::services::registry::Config {
            nats: tollgate_service::NatsConfig::at(&p.nats.url),
            tls_cert: Some(cert.clone()),
            tls_key: Some(key),
            ..Default::default()
        },
        listener,
        p.stop_token().cancelled_owned(),
    ));
    let url = format!("https://localhost:{port}");
    let trusted = std::fs::read(&cert).unwrap();
    let mut answered = None;
    for _ in 0..100 {
        let mut client =
            tollgate_proto::registry_client_tls(&url, "", Some(trusted.clone())).unwrap();
        match client.list_versions(ListVersionsRequest::default()).await {
            Ok(r) => {
                answered = Some(r.into_inner());
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert!(answered.is_some(), "the TLS registry never answered");

    // Plain HTTP/2 gets nothing, and neither does TLS trusting another certificate.
    let plain = tollgate_proto::registry_client(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .list_versions(ListVersionsRequest::default())
        .await;
    assert!(plain.is_err(), "a plain-text call was answered");
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let untrusted =
        tollgate_proto::registry_client_tls(&url, "", Some(stranger.cert.pem().into_bytes()))
            .unwrap()
            .list_versions(ListVersionsRequest::default())
            .await;
    assert!(
        untrusted.is_err(),
        "a client trusting another certificate was answered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_nats_server_is_reached_only_by_clients_that_trust_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("nats.crt"), dir.path().join("nats.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let conf = dir.path().join("nats-server.conf");
    std::fs::write(
        &conf,
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let nats = tollgate_e2e::NatsServer::start_with(Some(&conf)).unwrap();

    // TOLLGATE_NATS_CA's path: the bus trusts the certificate and opens its streams.
    let auth = tollgate_bus::bus::Options {
        creds: None,
        ca: Some(cert.clone()),
        ..Default::default()
    };
    let bus = tollgate_bus::Bus::connect_with(&nats.url, &auth)
        .await
        .unwrap();
    assert!(
        bus.jetstream()
            .get_stream(tollgate_bus::subjects::WORK_STREAM)
            .await
            .is_ok()
    );

    // A client that does not trust it gets no connection.
    let untrusting = async_nats::ConnectOptions::new()
        .require_tls(true)
        .connect(&nats.url)
        .await;
    assert!(untrusting.is_err(), "a client without the CA connected");
}

/// The venv's Python (`TOLLGATE_PYTHON`, which `make test` sets and fills).
pub(crate) fn python() -> std::path::PathBuf {
    let path = std::env::var_os("TOLLGATE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tollgate_e2e::workspace_root().join(".tools/venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: `make test` (or `make python-tools`) installs nats-py there",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_py_as_each_identity_is_refused_what_it_must_not_do_and_served_what_it_needs() {
    let creds = tempfile::tempdir().unwrap();
    let p = Pipeline::start_secured(creds.path(), |_| {}).await.unwrap();
    // A run first: every stream, bucket and store is in use, made by the registry.
    let data = p.dataset("churn.parquet", 2_000, 62, false).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    use tollgate_bus::subjects;
    let names = serde_json::json!({
        "work_stream": subjects::WORK_STREAM,
        "streams": tollgate_bus::catalog::stream_names(),
        "production": subjects::stage(tollgate_proto::Stage::Production),
        "promote": subjects::stage(tollgate_proto::Stage::Promote),
        "model_trigger": subjects::trigger(TriggerKind::Model),
    });
    let out = std::process::Command::new(python())
        .env("TOLLGATE_MATRIX_NAMES", names.to_string())
        .arg(tollgate_e2e::workspace_root().join("tests/python/nats_matrix.py"))
        .arg(&p.nats.url)
        .arg(creds.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    for line in [
        "trainer          refused  consumer delete: $JS.API.CONSUMER.DELETE.TOLLGATE_WORK.stage-train",
        "viewer           refused  stream purge: $JS.API.STREAM.PURGE.OBJ_tollgate_artifacts",
        "ci               refused  stream create: $JS.API.STREAM.CREATE.TOLLGATE_WORK",
        "operator         refused  KV put on the models bucket: $KV.tollgate_models.churn.v.1",
        "registry         answered stream create: $JS.API.STREAM.CREATE.TOLLGATE_WORK",
        "trainer          answered object put: tollgate_artifacts",
        "trainer          refused  object delete: tollgate_artifacts",
    ] {
        assert!(said.contains(line), "{line} not in:\n{said}");
    }
    // The pipeline still works after all that.
    let again = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(again.verdict(), Verdict::Passed, "{}", again.reason);
}
