//! Unit tests of the parent module.

use super::*;

/// Every `tollgate_*` series name in a file under `deploy/`.
fn series_in(path: &str) -> std::collections::BTreeSet<String> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("tollgate_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_alert_rules_and_the_dashboard_read_only_series_the_services_export() {
    let exported = prometheus_names();
    for file in [
        "prometheus/rules.yml",
        "prometheus/rules.test.yml",
        "grafana/tollgate.json",
    ] {
        let used = series_in(file);
        assert!(used.len() >= 4, "{file} reads almost nothing: {used:?}");
        for name in &used {
            assert!(
                exported.contains(name),
                "{file} reads {name}, which no service exports; exported: {exported:?}"
            );
        }
    }
}

#[test]
fn prometheus_names_follow_the_collectors_translation() {
    let names = prometheus_names();
    for expected in [
        "tollgate_runs_total",
        "tollgate_run_duration_seconds_bucket",
        "tollgate_training_duration_seconds_count",
        "tollgate_model_metric",
        "tollgate_messages_dead_lettered_total",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
}
