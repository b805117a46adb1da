//! Tracing and OpenTelemetry set-up, called first by every Tollgate binary.
//!
//! Logs go to stderr through `tracing` (human-readable, or JSON with
//! `TOLLGATE_LOG_FORMAT=json`), filtered by `RUST_LOG` (default `info`). Spans get
//! OpenTelemetry trace ids and the W3C trace-context propagator is installed, so the bus
//! and the registry's gRPC calls carry one trace across every service.
//!
//! Export is configured only by OpenTelemetry's standard variables, and is off unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set: spans and [`metrics`] then go over OTLP/gRPC,
//! batched on the SDK's own threads so a collector that is down never holds up a stage.
//! `OTEL_SERVICE_NAME` (default: the binary's name), `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER` and the exporter's own `OTEL_EXPORTER_OTLP_*` variables apply.

mod json;
pub mod metrics;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt,
};

/// The variable that switches OTLP export on.
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The log format switch: `json` for one JSON object per line.
pub const LOG_FORMAT_VAR: &str = "TOLLGATE_LOG_FORMAT";

/// Whether telemetry (this crate, or the OpenTelemetry SDK and exporter it installs) reads
/// the environment variable `var`: what a deployment may set on every binary.
pub fn reads_env(var: &str) -> bool {
    matches!(
        var,
        "RUST_LOG"
            | LOG_FORMAT_VAR
            | "OTEL_SERVICE_NAME"
            | "OTEL_RESOURCE_ATTRIBUTES"
            | "OTEL_TRACES_SAMPLER"
            | "OTEL_TRACES_SAMPLER_ARG"
            | "OTEL_SDK_DISABLED"
    ) || var.starts_with("OTEL_EXPORTER_OTLP_")
}

/// Keeps telemetry alive; dropping it flushes spans and metrics and shuts the providers
/// down. Drop it while the Tokio runtime still runs: the exporter's channel lives there.
pub struct Guard {
    tracer: SdkTracerProvider,
    meter: Option<SdkMeterProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Nothing to do with a failure here: the process is ending.
        let _ = self.tracer.shutdown();
        if let Some(meter) = &self.meter {
            let _ = meter.shutdown();
        }
    }
}

/// Installs logging and tracing for the binary `service` (its default OpenTelemetry
/// service name), logging at `info` unless `RUST_LOG` says otherwise. Safe to call more
/// than once in one process (tests): later calls keep the first subscriber.
pub fn init(service: &'static str) -> Guard {
    init_with_level(service, "info")
}

/// Whether a non-empty value of `var` is set.
fn set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

/// The resource every span and metric carries: the SDK reads `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`; when neither names the service, it is `service`.
fn resource(service: &'static str) -> Resource {
    let named = set("OTEL_SERVICE_NAME")
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name(service).build()
    }
}

/// The OTLP exporters when `OTEL_EXPORTER_OTLP_ENDPOINT` is set and a Tokio runtime is
/// running (the gRPC channel lives on it); otherwise none, with the reason as a warning
/// once logging is up.
fn exporters(
    service: &'static str,
) -> (
    Option<(SdkTracerProvider, SdkMeterProvider)>,
    Option<String>,
) {
    if !set(OTLP_ENDPOINT_VAR) {
        return (None, None);
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return (
            None,
            Some(format!(
                "{OTLP_ENDPOINT_VAR} is set but telemetry started outside a Tokio runtime: not exporting"
            )),
        );
    }
    use opentelemetry_otlp::WithExportConfig as _;
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
        .build();
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
        .build();
    match (spans, metrics) {
        (Ok(spans), Ok(metrics)) => {
            let resource = resource(service);
            let tracer = SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_batch_exporter(spans)
                .build();
            let meter = SdkMeterProvider::builder()
                .with_resource(resource)
                .with_periodic_exporter(metrics)
                .build();
            (Some((tracer, meter)), None)
        }
        (Err(e), _) | (_, Err(e)) => (
            None,
            Some(format!("OTLP exporter not built, not exporting: {e}")),
        ),
    }
}

/// Like [`init`], with another default level: the CLI logs only warnings unless asked,
/// so its own output stays readable.
pub fn init_with_level(service: &'static str, default_level: &str) -> Guard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let (exporting, problem) = exporters(service);
    let (provider, meter) = match exporting {
        Some((tracer, meter)) => {
            opentelemetry::global::set_meter_provider(meter.clone());
            (tracer, Some(meter))
        }
        None => (SdkTracerProvider::builder().build(), None),
    };
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider.clone());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Spans at `info` and above are traced whatever `RUST_LOG` lets through to the
    // log: the CLI logs only warnings, yet its publish span starts the run's trace.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(LevelFilter::INFO);
    let json = std::env::var(LOG_FORMAT_VAR).is_ok_and(|v| v == "json");
    let registry = tracing_subscriber::registry().with(otel);
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .event_format(json::JsonLines)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_target(false)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()
    };
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    } else if meter.is_some() {
        tracing::info!(service, "exporting traces and metrics over OTLP");
    }
    Guard {
        tracer: provider,
        meter,
    }
}
