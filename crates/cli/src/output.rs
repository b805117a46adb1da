//! How the CLI prints: tables in one style, durations and times as people read them.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

/// Milliseconds as seconds for tables: `0.21s`.
pub fn seconds(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

pub(crate) fn when(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), crate::CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| crate::CliError::Usage(format!("cannot encode JSON: {e}")))?;
    say!("{text}");
    Ok(())
}

/// The line `runs show` prints when a failed validation kept its failing rows.
pub(crate) fn print_kept_failures(run: &tollgate_proto::RunSummary) {
    if let Some(v) = run
        .validation
        .as_ref()
        .filter(|v| !v.failures_object.is_empty())
    {
        say!(
            "{} failing rows kept: tollgate runs failures {} --out FILE",
            v.failing_rows,
            run.run_id
        );
    }
}
