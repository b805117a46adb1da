//! PostgreSQL tables and queries as datasets: `postgres://user@host:5432/db?table=customers`
//! or `…?query=SELECT …` (URL-encoded). Rows stream from the server in the binary
//! protocol and are written to a Parquet file in batches, typed as the columns are:
//! booleans, integers, floating-point and numeric numbers, text, dates, times and
//! timestamps, with nulls kept. The password comes from `PGPASSWORD` or a `.pgpass`-style
//! file (`PGPASSFILE`, else `~/.pgpass`), never from a spec.

use std::{path::Path, str::FromStr};

use futures::{StreamExt, pin_mut};
use polars::prelude::*;
use tokio_postgres::{
    Client, NoTls, Row,
    types::{FromSql, Type},
};
use tracing::warn;

use crate::SourceError;

/// Rows written to Parquet at a time: memory holds one batch, whatever the table's size.
pub const BATCH_ROWS: usize = 65_536;

/// What a `postgres://` URI reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// A table (or view), `schema.table` or `table`.
    Table(String),
    /// A query, as given.
    Query(String),
}

/// A `postgres://` (or `postgresql://`) dataset URI: how to connect and what to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUri {
    /// The connection part, without `table=` and `query=`.
    pub connection: String,
    /// The table or query.
    pub relation: Relation,
}

impl PgUri {
    /// Parses a `postgres://` URI; `None` for other schemes.
    pub fn parse(uri: &str) -> Option<Result<PgUri, SourceError>> {
        if !(uri.starts_with("postgres://") || uri.starts_with("postgresql://")) {
            return None;
        }
        let bad = |why: &str| Some(Err(SourceError::BadUri(format!("{}: {why}", redact(uri)))));
        let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
        let mut relation = None;
        let mut kept = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "table" if !v.trim().is_empty() => {
                    relation = Some(Relation::Table(v.trim().into()))
                }
                "query" if !v.trim().is_empty() => {
                    relation = Some(Relation::Query(v.trim().into()))
                }
                "table" | "query" => return bad("table= and query= need a value"),
                _ => kept.push(format!(
                    "{}={}",
                    form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>(),
                    form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )),
            }
        }
        let Some(relation) = relation else {
            return bad("name what to read with ?table=NAME or ?query=SELECT ...");
        };
        if base.split_once("://").is_some_and(|(_, rest)| {
            rest.split('@')
                .next()
                .is_some_and(|user| user.contains(':'))
                && rest.contains('@')
        }) {
            return bad(
                "a password does not belong in a dataset URI: set PGPASSWORD or a .pgpass file",
            );
        }
        let connection = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Some(Ok(PgUri {
            connection,
            relation,
        }))
    }

    /// What the rows come from in SQL: the quoted table, or the query as a subquery.
    fn rows_of(&self) -> String {
        match &self.relation {
            Relation::Table(t) => t.split('.').map(quote).collect::<Vec<_>>().join("."),
            Relation::Query(q) => format!("({}) AS tollgate_query", q.trim_end_matches(';')),
        }
    }

    /// The statement that reads every row.
    fn select(&self) -> String {
        match &self.relation {
            Relation::Table(_) => format!("SELECT * FROM {}", self.rows_of()),
            Relation::Query(q) => q.trim_end_matches(';').to_string(),
        }
    }
}

/// `uri` with no password in it, for messages.
fn redact(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or("");
                format!("{scheme}://{user}@{host}")
            }
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

/// A quoted SQL identifier.
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The password `PGPASSWORD` gives, else the first matching line of the `.pgpass`-style
/// file (`PGPASSFILE`, else `~/.pgpass`): `host:port:database:user:password`, `*`
/// matching anything.
fn password(config: &tokio_postgres::Config) -> Option<String> {
    if let Ok(p) = std::env::var("PGPASSWORD") {
        return Some(p);
    }
    let file = std::env::var("PGPASSFILE")
        .unwrap_or_else(|_| format!("{}/.pgpass", std::env::var("HOME").unwrap_or_default()));
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config.get_dbname().unwrap_or_default();
    let user = config.get_user().unwrap_or_default();
    pgpass_lookup(&text, [host.as_str(), &port, db, user])
}

/// The password of the first `host:port:database:user:password` line of a `.pgpass`
/// text that fits `wanted` (`*` matching anything); comments are skipped.
fn pgpass_lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields: Vec<&str> = line.splitn(5, ':').collect();
            let [h, p, d, u, pw] = fields.as_slice() else {
                return None;
            };
            let fits = [h, p, d, u]
                .iter()
                .zip(wanted)
                .all(|(field, value)| **field == "*" || **field == value);
            fits.then(|| pw.to_string())
        })
}

/// What a driver error means for a person.
fn error(uri: &PgUri, e: &tokio_postgres::Error) -> SourceError {
    let place = redact(&uri.connection);
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return match code {
            "28P01" | "28000" => SourceError::Denied {
                uri: place,
                reason: format!("{} (set PGPASSWORD or a .pgpass line)", db.message()),
            },
            "42P01" => SourceError::NotFound(format!("{place}: {}", db.message())),
            "3D000" => SourceError::NotFound(format!("{place}: {}", db.message())),
            _ => SourceError::Query {
                uri: place,
                reason: format!("{} (SQLSTATE {code})", db.message()),
            },
        };
    }
    SourceError::Unavailable {
        uri: place,
        reason: if e.is_closed() {
            format!("the connection dropped: {e}")
        } else {
            e.to_string()
        },
    }
}

/// Connects as the URI says, with the password from the environment.
async fn connect(uri: &PgUri) -> Result<Client, SourceError> {
    let mut config = tokio_postgres::Config::from_str(&uri.connection)
        .map_err(|e| SourceError::BadUri(format!("{}: {e}", redact(&uri.connection))))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    if let Some(p) = password(&config) {
        config.password(p);
    }
    let (client, connection) = config.connect(NoTls).await.map_err(|e| error(uri, &e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// A NUMERIC read as the nearest `f64` (the binary form: base-10000 digits).
struct Numeric(f64);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let word = |i: usize| -> Result<i16, Box<dyn std::error::Error + Sync + Send>> {
            raw.get(i..i + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "a NUMERIC value is cut short".into())
        };
        let (ndigits, weight, sign) = (word(0)?, word(2)?, word(4)? as u16);
        if sign == 0xC000 {
            return Ok(Numeric(f64::NAN));
        }
        let mut value = 0.0;
        for i in 0..ndigits.max(0) as usize {
            let digit = f64::from(word(8 + 2 * i)?);
            value += digit * 10_000f64.powi(i32::from(weight) - i as i32);
        }
        Ok(Numeric(if sign == 0x4000 { -value } else { value }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// One column's values of a batch, as its type reads.
enum Column {
    Bool(Vec<Option<bool>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    /// Days since 1970-01-01.
    Date(Vec<Option<i32>>),
    /// Microseconds since 1970-01-01 (UTC for `timestamptz`).
    Timestamp(Vec<Option<i64>>),
    /// Nanoseconds since midnight.
    Time(Vec<Option<i64>>),
}

impl Column {
    fn of(name: &str, ty: &Type) -> Result<Column, String> {
        Ok(match *ty {
            Type::BOOL => Column::Bool(Vec::new()),
            Type::INT2 | Type::INT4 | Type::INT8 => Column::Int(Vec::new()),
            Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => Column::Float(Vec::new()),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Column::Text(Vec::new()),
            Type::DATE => Column::Date(Vec::new()),
            Type::TIMESTAMP | Type::TIMESTAMPTZ => Column::Timestamp(Vec::new()),
            Type::TIME => Column::Time(Vec::new()),
            _ => {
                return Err(format!(
                    "column {name:?} has type {ty}, which Tollgate does not read: cast it in a query= (e.g. {name}::text)"
                ));
            }
        })
    }

    fn push(&mut self, row: &Row, i: usize, ty: &Type) -> Result<(), tokio_postgres::Error> {
        use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
        match self {
            Column::Bool(v) => v.push(row.try_get(i)?),
            Column::Int(v) => v.push(match *ty {
                Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(i64::from),
                Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(i64::from),
                _ => row.try_get(i)?,
            }),
            Column::Float(v) => v.push(match *ty {
                Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(f64::from),
                Type::NUMERIC => row.try_get::<_, Option<Numeric>>(i)?.map(|n| n.0),
                _ => row.try_get(i)?,
            }),
            Column::Text(v) => v.push(row.try_get(i)?),
            Column::Date(v) => {
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
                let d: Option<NaiveDate> = row.try_get(i)?;
                v.push(d.map(|d| (d - epoch).num_days() as i32));
            }
            Column::Timestamp(v) => v.push(match *ty {
                Type::TIMESTAMPTZ => row
                    .try_get::<_, Option<DateTime<Utc>>>(i)?
                    .map(|t| t.timestamp_micros()),
                _ => row
                    .try_get::<_, Option<NaiveDateTime>>(i)?
                    .map(|t| t.and_utc().timestamp_micros()),
            }),
            Column::Time(v) => {
                let t: Option<NaiveTime> = row.try_get(i)?;
                v.push(t.map(|t| {
                    i64::from(t.num_seconds_from_midnight()) * 1_000_000_000
                        + i64::from(t.nanosecond())
                }));
            }
        }
        Ok(())
    }

    /// The batch's values as a polars column, leaving this one empty for the next batch.
    fn take(&mut self, name: &str) -> PolarsResult<polars::prelude::Column> {
        let name = PlSmallStr::from(name);
        let series = match self {
            Column::Bool(v) => Series::new(name, std::mem::take(v)),
            Column::Int(v) => Series::new(name, std::mem::take(v)),
            Column::Float(v) => Series::new(name, std::mem::take(v)),
            Column::Text(v) => Series::new(name, std::mem::take(v)),
            Column::Date(v) => Series::new(name, std::mem::take(v)).cast(&DataType::Date)?,
            Column::Timestamp(v) => Series::new(name, std::mem::take(v))
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
            Column::Time(v) => Series::new(name, std::mem::take(v)).cast(&DataType::Time)?,
        };
        Ok(series.into())
    }
}

fn write_error(path: &Path, e: PolarsError) -> SourceError {
    SourceError::Io(std::io::Error::other(format!(
        "writing {}: {e}",
        path.display()
    )))
}

/// Reads every row `uri` names into a Parquet file at `dest`, [`BATCH_ROWS`] at a time;
/// returns the rows read. More than `max_rows` rows are refused.
pub async fn read(uri: &PgUri, dest: &Path, max_rows: u64) -> Result<u64, SourceError> {
    let client = connect(uri).await?;
    let statement = client
        .prepare(&uri.select())
        .await
        .map_err(|e| error(uri, &e))?;
    let fields: Vec<(String, Type)> = statement
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().clone()))
        .collect();
    let mut columns = fields
        .iter()
        .map(|(name, ty)| Column::of(name, ty))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| SourceError::Query {
            uri: redact(&uri.connection),
            reason,
        })?;
    let rows = client
        .query_raw(&statement, std::iter::empty::<i32>())
        .await
        .map_err(|e| error(uri, &e))?;
    pin_mut!(rows);
    let file = std::fs::File::create(dest)?;
    let mut writer: Option<polars::io::parquet::write::BatchedWriter<std::fs::File>> = None;
    let mut file = Some(file);
    let mut read = 0u64;
    let mut in_batch = 0usize;
    let flush = |columns: &mut Vec<Column>,
                 writer: &mut Option<polars::io::parquet::write::BatchedWriter<std::fs::File>>,
                 file: &mut Option<std::fs::File>|
     -> Result<(), SourceError> {
        let cols = columns
            .iter_mut()
            .zip(&fields)
            .map(|(c, (name, _))| c.take(name))
            .collect::<PolarsResult<Vec<_>>>()
            .map_err(|e| write_error(dest, e))?;
        let df = DataFrame::new_infer_height(cols).map_err(|e| write_error(dest, e))?;
        if writer.is_none()
            && let Some(f) = file.take()
        {
            *writer = Some(
                ParquetWriter::new(f)
                    .batched(df.schema())
                    .map_err(|e| write_error(dest, e))?,
            );
        }
        if let Some(w) = writer.as_mut() {
            w.write_batch(&df).map_err(|e| write_error(dest, e))?;
        }
        Ok(())
    };
    while let Some(row) = rows.next().await {
        let row = row.map_err(|e| error(uri, &e))?;
        for (i, (c, (_, ty))) in columns.iter_mut().zip(&fields).enumerate() {
            c.push(&row, i, ty).map_err(|e| error(uri, &e))?;
        }
        read += 1;
        in_batch += 1;
        if read > max_rows {
            return Err(SourceError::TooLarge {
                uri: redact(&uri.connection),
                limit: max_rows,
            });
        }
        if in_batch == BATCH_ROWS {
            flush(&mut columns, &mut writer, &mut file)?;
            in_batch = 0;
        }
    }
    if in_batch > 0 || writer.is_none() {
        flush(&mut columns, &mut writer, &mut file)?;
    }
    if let Some(w) = writer {
        w.finish().map_err(|e| write_error(dest, e))?;
    }
    Ok(read)
}

/// The largest value of `column` among the rows `uri` names, as text; `None` when there
/// are none. What a source's `watermark` compares between checks.
pub async fn watermark(uri: &PgUri, column: &str) -> Result<Option<String>, SourceError> {
    let client = connect(uri).await?;
    let sql = format!("SELECT max({})::text FROM {}", quote(column), uri.rows_of());
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(|e| error(uri, &e))?;
    row.try_get::<_, Option<String>>(0)
        .map_err(|e| error(uri, &e))
}

#[cfg(test)]
mod tests;
