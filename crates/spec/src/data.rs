//! The spec's `data:` section: where new data for the `data` plan comes from (a local
//! directory, the datasets store, a bucket prefix, or a PostgreSQL table with its
//! watermark column), how often it is looked at and how long a burst of arrivals settles.

use serde::{Deserialize, Serialize};

use crate::schedule;

/// The spec's `data:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "RawDataSource")]
pub struct DataSource {
    /// `objstore://PREFIX` (the newest pushed object under the prefix), `file:///dir/`
    /// (the newest Parquet or CSV file there), a `file://` glob, a bucket prefix or glob
    /// (`s3://bucket/incoming/`, `gs://…`, `az://…`: the newest object) or a PostgreSQL
    /// table or query (`postgres://user@host/db?table=customers`).
    pub source: String,
    /// For a PostgreSQL source, the column whose largest value says new rows arrived
    /// (`data.source: {uri: postgres://…, watermark: updated_at}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    /// New data starts the `data` plan once the newest dataset has not changed for this
    /// long (a burst of arrivals is one run).
    pub debounce: schedule::Window,
    /// How often a bucket is listed or a table's watermark read (`1m` by default); local
    /// directories and pushed objects are checked every tick.
    pub interval: schedule::Window,
}

/// The schemes a `data.source` may have.
const SOURCE_SCHEMES: [&str; 7] = [
    "objstore://",
    "file:///",
    "s3://",
    "gs://",
    "az://",
    "postgres://",
    "postgresql://",
];

impl DataSource {
    /// Checks the source's scheme; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        if SOURCE_SCHEMES.iter().any(|s| self.source.starts_with(s)) {
            return Ok(());
        }
        Err(format!(
            "data.source {:?}: use objstore://PREFIX, file:///dir/ (or a file:// glob), s3://BUCKET/PREFIX/ (gs://, az://) or postgres://USER@HOST/DB?table=NAME",
            self.source
        ))
    }
}

/// `data.source` as written: a URI, or a URI with the watermark column.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSource {
    Uri(String),
    Table(RawTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    uri: String,
    #[serde(default)]
    watermark: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataSource {
    source: RawSource,
    #[serde(default)]
    watermark: Option<String>,
    #[serde(default = "default_debounce")]
    debounce: schedule::Window,
    #[serde(default = "default_interval")]
    interval: schedule::Window,
}

impl TryFrom<RawDataSource> for DataSource {
    type Error = String;

    fn try_from(raw: RawDataSource) -> Result<Self, String> {
        let (source, watermark) = match raw.source {
            RawSource::Uri(uri) => (uri, raw.watermark),
            RawSource::Table(t) => (t.uri, t.watermark.or(raw.watermark)),
        };
        if watermark.is_some()
            && !(source.starts_with("postgres://") || source.starts_with("postgresql://"))
        {
            return Err(format!(
                "data.source.watermark is for a postgres:// source, not {source:?}"
            ));
        }
        Ok(DataSource {
            source,
            watermark,
            debounce: raw.debounce,
            interval: raw.interval,
        })
    }
}

fn default_interval() -> schedule::Window {
    schedule::Window(std::time::Duration::from_secs(60))
}

pub(crate) fn default_debounce() -> schedule::Window {
    schedule::Window(std::time::Duration::from_secs(30))
}
