//! OpenTelemetry export as a collector sees it: a real OTLP/gRPC receiver (the
//! `opentelemetry-proto` crate's tonic services) takes what the six service processes and
//! the CLI send for one data change, and the run must be one trace whose stage spans all
//! descend from the CLI's publish span, with the run metrics alongside.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::any_value::Value,
};
use tollgate_e2e::{NatsServer, workspace_root};
use tollgate_stack::SERVICES;

use super::processes::{Services, generate, publish, service_env};

/// One received span: who sent it and where it sits in its trace.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    attributes: HashMap<String, String>,
}

/// What the receiver got: spans, and the names of the metrics.
#[derive(Default, Clone)]
pub(super) struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    pub(super) metrics: Arc<Mutex<BTreeSet<String>>>,
}

impl Received {
    /// An OTLP/gRPC receiver on a loopback port, served on the current runtime: what it
    /// gets, and its endpoint.
    pub(super) async fn start() -> (Received, String) {
        let received = Received::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(received.clone()))
                .add_service(MetricsServiceServer::new(received.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (received, endpoint)
    }
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        _ => String::new(),
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for s in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Span {
                    service: service.clone(),
                    name: s.name,
                    trace: s.trace_id,
                    id: s.span_id,
                    parent: s.parent_span_id,
                    attributes: s
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(&a.value)))
                        .collect(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut names = self.metrics.lock().unwrap();
        for rm in request.into_inner().resource_metrics {
            for m in rm.scope_metrics.into_iter().flat_map(|s| s.metrics) {
                names.insert(m.name);
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// The six service processes with `otel` added to their environment (their logs in
/// `logs`, when given), and one `kind` change of 3,000 rows published by the CLI with the
/// same environment, which must pass.
fn run_one(kind: &str, otel: &[(&'static str, String)], logs: Option<&std::path::Path>) {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = service_env(&nats, dir.path());
    env.extend(otel.iter().cloned());
    let mut services = logs.map_or_else(Services::new, Services::logging_to);
    services.spawn(&env, &SERVICES);
    let data = dir.path().join("churn.parquet");
    generate(&data, 3000, &[]);
    let spec = workspace_root().join("examples/churn/tollgate.yaml");
    let out = publish(&env, kind, &spec, &data, &["--wait", "--timeout", "120"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("verdict: PASSED"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SIGTERM: each service flushes its spans and metrics as it exits.
    services.stop_gracefully();
}

#[test]
fn one_run_is_one_trace_across_the_services_and_the_cli_and_its_metrics_arrive() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (received, endpoint) = runtime.block_on(Received::start());
    let logs = tempfile::tempdir().unwrap();

    run_one(
        "data",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500".into()),
            ("TOLLGATE_LOG_FORMAT", "json".into()),
        ],
        Some(logs.path()),
    );

    let spans = received.spans.lock().unwrap().clone();
    let publish = spans
        .iter()
        .find(|s| s.name == "publish" && s.service == "tollgate")
        .unwrap_or_else(|| panic!("no publish span from the CLI among {spans:#?}"));
    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace == publish.trace).collect();
    let services_in_trace: BTreeSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
    for name in SERVICES {
        let service = format!("tollgate-{name}");
        assert!(
            services_in_trace.contains(service.as_str()),
            "{service} sent no span in the run's trace; services seen: {services_in_trace:?}"
        );
    }
    // Every stage span descends from the publish span through spans of the same trace.
    let by_id: HashMap<&[u8], &Span> = trace.iter().map(|s| (s.id.as_slice(), *s)).collect();
    // The run's own stages; the Staging version it made starts a model-change run, whose
    // stages join the same trace as its cause.
    let run_id = &publish.attributes["run_id"];
    let stages: Vec<&&Span> = trace
        .iter()
        .filter(|s| s.name == "stage" && s.attributes.get("run_id") == Some(run_id))
        .collect();
    let names: BTreeSet<&str> = stages
        .iter()
        .filter_map(|s| s.attributes.get("stage").map(String::as_str))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["gate", "promote", "train", "validate"]),
        "{stages:#?}"
    );
    for stage in &stages {
        let mut at: &Span = stage;
        let mut hops = 0;
        while at.id != publish.id {
            at = by_id.get(at.parent.as_slice()).unwrap_or_else(|| {
                panic!("stage span {stage:?} does not reach the publish span: {at:?} has no parent in the trace")
            });
            hops += 1;
            assert!(hops < 100, "parent loop at {at:?}");
        }
        assert_eq!(
            stage.attributes.get("model").map(String::as_str),
            Some("churn")
        );
        assert!(stage.attributes.contains_key("run_id"), "{stage:?}");
        assert_eq!(
            stage.attributes.get("status").map(String::as_str),
            Some("passed")
        );
    }
    let train = stages
        .iter()
        .find(|s| s.attributes.get("stage").map(String::as_str) == Some("train"))
        .unwrap();
    let auc: f64 = train.attributes["auc_roc"].parse().unwrap();
    assert_eq!(train.attributes["version"], "1", "{train:?}");
    assert_eq!(train.attributes["trigger"], "data", "{train:?}");
    assert!(auc > 0.8, "{train:?}");
    let gate = stages
        .iter()
        .find(|s| s.attributes.get("stage").map(String::as_str) == Some("gate"))
        .unwrap();
    assert_eq!(gate.attributes["gate_verdict"], "passed");
    assert_eq!(gate.attributes["version"], "1", "{gate:?}");
    // The registry's gRPC work joins the trace too.
    assert!(
        trace
            .iter()
            .any(|s| s.service == "tollgate-registry" && s.name == "grpc"),
        "{trace:#?}"
    );

    // The trainer's JSON log line for its stage names the trace, its span and the run.
    let log = std::fs::read_to_string(logs.path().join("trainer.log")).unwrap();
    let finished: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "stage finished" && l["run_id"] == run_id.as_str())
        .unwrap_or_else(|| panic!("no JSON `stage finished` line for run {run_id}:\n{log}"));
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(finished["trace_id"], hex(&publish.trace), "{finished}");
    assert_eq!(finished["span_id"], hex(&train.id), "{finished}");

    let metrics = received.metrics.lock().unwrap().clone();
    for metric in tollgate_telemetry::metrics::Metric::ALL {
        use tollgate_telemetry::metrics::Metric;
        if metric == Metric::DeadLettered || metric == Metric::LiveMetric {
            continue; // nothing was dead-lettered, and no model server ran (labels.rs)
        }
        let name = metric.name();
        assert!(
            metrics.contains(&name),
            "{name} not received; got {metrics:?}"
        );
    }
}

#[test]
fn a_collector_that_is_down_holds_up_no_stage() {
    // Nothing listens there.
    let closed = tollgate_e2e::free_port().unwrap();
    run_one(
        "code",
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{closed}"),
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000".into()),
        ],
        None,
    );
}
