//! Dates and times as Great Expectations reads them: parsing a text into a temporal
//! column's physical value, ISO 8601 output, and Python's `strftime` formats.

use polars::prelude::*;

/// A date or time as Great Expectations reads one (dateutil's parser: ISO 8601 and the
/// usual written forms), in microseconds since the epoch; a value with an offset is
/// taken to UTC.
pub fn timestamp(text: &str) -> Result<i64, String> {
    let (naive, offset) =
        dtparse::parse(text).map_err(|e| format!("{text:?} is not a date or time ({e})"))?;
    let utc = match offset {
        Some(o) => naive - chrono::Duration::seconds(i64::from(o.local_minus_utc())),
        None => naive,
    };
    Ok(utc.and_utc().timestamp_micros())
}

pub(super) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A date or time text as the physical value of a temporal column of `dtype`: days for a
/// date, the column's unit since the epoch for a datetime.
pub(super) fn physical(text: &str, dtype: &DataType) -> Result<i64, String> {
    let micros = timestamp(text)?;
    Ok(match dtype {
        DataType::Date => micros.div_euclid(MICROS_PER_DAY),
        DataType::Datetime(TimeUnit::Nanoseconds, _) => micros.saturating_mul(1000),
        DataType::Datetime(TimeUnit::Milliseconds, _) => micros.div_euclid(1000),
        _ => micros,
    })
}

/// A temporal column's physical value back as GX shows it: ISO 8601.
pub(super) fn iso(value: i64, dtype: &DataType) -> Option<String> {
    let micros = match dtype {
        DataType::Date => value.checked_mul(MICROS_PER_DAY)?,
        DataType::Datetime(TimeUnit::Nanoseconds, _) => value.div_euclid(1000),
        DataType::Datetime(TimeUnit::Milliseconds, _) => value.checked_mul(1000)?,
        _ => value,
    };
    let t = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
    Some(match dtype {
        DataType::Date => t.format("%Y-%m-%d").to_string(),
        _ if micros % 1_000_000 != 0 => t.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
        _ => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
    })
}

/// Values as bounds and sets compare them: temporal ones by their physical count (so ISO
/// bounds become numbers of the same unit), others as they are.
pub(super) fn physical_of(x: Expr, dtype: &DataType) -> Expr {
    if dtype.is_temporal() {
        x.to_physical()
    } else {
        x
    }
}

/// Column `c` (of `dtype`) as bounds and sets compare it; see [`physical_of`].
pub(super) fn subject(c: &str, dtype: &DataType) -> Expr {
    physical_of(col(c), dtype)
}

/// Text read as dates and times (GX 0.x's `parse_strings_as_datetimes`), as microseconds
/// since the epoch; text dateutil cannot read becomes null.
pub(super) fn parsed_times(x: Expr) -> Expr {
    x.map(
        |column: Column| {
            let out: Int64Chunked = column
                .str()?
                .iter()
                .map(|v| v.and_then(|v| timestamp(v).ok()))
                .collect();
            Ok(out.with_name(column.name().clone()).into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::Int64)),
    )
}

/// The directives Python's `strptime` knows; a format with another is refused, as GX
/// refuses it.
pub(super) const STRPTIME_DIRECTIVES: &str = "aAwdbBmyYHIpMSfzZjUWcxXGuV%";

/// Refuses a `strftime_format` Python could not use.
pub(super) fn strftime_usable(format: &str) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%'
            && !chars
                .next()
                .is_some_and(|d| STRPTIME_DIRECTIVES.contains(d))
        {
            return Err(format!("Unable to use provided strftime_format {format:?}"));
        }
    }
    Ok(())
}

/// Whether `value` reads whole with `format`, as Python's `strptime` reads it: every
/// field in range, and a full date a real one.
pub(super) fn strftime_matches(value: &str, format: &str) -> bool {
    let mut parsed = chrono::format::Parsed::new();
    if chrono::format::parse(
        &mut parsed,
        value,
        chrono::format::StrftimeItems::new(format),
    )
    .is_err()
    {
        return false;
    }
    match (parsed.year(), parsed.month(), parsed.day()) {
        (Some(_), Some(_), Some(_)) => parsed.to_naive_date().is_ok(),
        _ => true,
    }
}
