//! Tracing and OpenTelemetry set-up, called first by every Tollgate binary.
//!
//! Logs go to stderr through `tracing` (human-readable, or JSON with
//! `TOLLGATE_LOG_FORMAT=json`), filtered by `RUST_LOG` (default `info`). Spans get
//! OpenTelemetry trace ids and the W3C trace-context propagator is installed, so the bus
//! can carry one trace across every service; exporting spans is switched on later by an
//! OTLP endpoint.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// Keeps telemetry alive; dropping it flushes and shuts the tracer provider down.
pub struct Guard {
    provider: SdkTracerProvider,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Nothing to do with a failure here: the process is ending.
        let _ = self.provider.shutdown();
    }
}

/// Installs logging and tracing for the binary `service`, logging at `info` unless
/// `RUST_LOG` says otherwise. Safe to call more than once in one process (tests): later
/// calls keep the first subscriber.
pub fn init(service: &'static str) -> Guard {
    init_with_level(service, "info")
}

/// Like [`init`], with another default level: the CLI logs only warnings unless asked,
/// so its own output stays readable.
pub fn init_with_level(service: &'static str, default_level: &str) -> Guard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider.clone());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let json = std::env::var("TOLLGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_target(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    Guard { provider }
}
