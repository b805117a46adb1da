//! The JSON log line (`TOLLGATE_LOG_FORMAT=json`): one object per event with its fields,
//! the OpenTelemetry `trace_id` and `span_id` it happened under, and the `run_id` of the
//! nearest span that names one, so a log search joins a trace and a run without parsing
//! span lists.

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::{Event, Subscriber, field::Field};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, format::Writer},
    registry::LookupSpan,
};

/// Formats events as JSON lines with trace and run ids.
pub struct JsonLines;

/// Collects an event's fields into a JSON object.
struct Fields<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("level".into(), Value::from(meta.level().as_str()));
        line.insert("target".into(), Value::from(meta.target()));
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        // The nearest span's `run_id`; span fields are stored as the JSON the field
        // formatter wrote.
        let run_id = ctx.event_scope().and_then(|scope| {
            scope.into_iter().find_map(|span| {
                let ext = span.extensions();
                let stored = ext.get::<FormattedFields<N>>()?;
                let parsed: Map<String, Value> = serde_json::from_str(stored).ok()?;
                parsed.get("run_id").cloned()
            })
        });
        if let Some(run_id) = run_id.filter(|_| !fields.contains_key("run_id")) {
            line.insert("run_id".into(), run_id);
        }
        let cx = tracing::Span::current().context();
        let span_ref = cx.span();
        let sc = span_ref.span_context();
        if sc.is_valid() {
            line.insert("trace_id".into(), Value::from(sc.trace_id().to_string()));
            line.insert("span_id".into(), Value::from(sc.span_id().to_string()));
        }
        line.extend(fields);
        writeln!(writer, "{}", Value::Object(line))
    }
}
