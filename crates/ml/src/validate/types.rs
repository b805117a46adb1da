//! Values and types between JSON, polars and pandas: set members as literals, GX's
//! type names, and which types compare.

use super::dates::*;
use polars::prelude::*;
use serde_json::Value;

/// A set member as a literal of the column's kind: a temporal column's members are date
/// or time texts, compared by their physical value (see [`subject`]).
pub(super) fn literal(v: &Value, dtype: &DataType) -> Expr {
    match v {
        Value::String(s) if dtype.is_temporal() => match physical(s, dtype) {
            Ok(p) => lit(p),
            Err(_) => lit(NULL),
        },
        Value::String(s) => lit(s.as_str()),
        Value::Bool(b) => lit(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => lit(i),
            None => lit(n.as_f64().unwrap_or(f64::NAN)),
        },
        _ => lit(NULL),
    }
}

/// True where `x` (physical values of `dtype`, see [`physical_of`]) is one of `set`.
pub(super) fn in_set(x: Expr, dtype: &DataType, set: &[Value]) -> Expr {
    set.iter()
        .map(|v| x.clone().eq(literal(v, dtype)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false))
        .fill_null(lit(false))
}

/// A value as JSON, the way GX reports it: numbers, text, booleans, and dates and times
/// in ISO 8601.
pub(super) fn json_of(v: &AnyValue) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::String(s) => Value::String(s.to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Date(d) => iso(i64::from(*d), &DataType::Date).map_or(Value::Null, Value::String),
        AnyValue::Datetime(t, unit, _) => {
            iso(*t, &DataType::Datetime(*unit, None)).map_or(Value::Null, Value::String)
        }
        v if v.is_signed_integer() => v.extract::<i64>().map_or(Value::Null, Value::from),
        v if v.is_unsigned_integer() => v.extract::<u64>().map_or(Value::Null, Value::from),
        v => v
            .extract::<f64>()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
    }
}

/// Whether two values as JSON are the same value: numbers by value (1 is 1.0), others as
/// they are.
pub(super) fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A value set's members as [`json_of`] shows the column's values, so the two compare
/// with [`same_value`]: a temporal column's members in ISO 8601.
pub(super) fn members(set: &[Value], dtype: &DataType) -> Vec<Value> {
    set.iter()
        .map(|x| match x {
            Value::String(s) if dtype.is_temporal() => physical(s, dtype)
                .ok()
                .and_then(|p| iso(p, dtype))
                .map_or(x.clone(), Value::String),
            other => other.clone(),
        })
        .collect()
}

/// A statistic as GX reports it: a whole number as an integer, others as floats.
pub(super) fn json_number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// The name pandas gives a column's dtype, as GX reports it for the type checks.
pub(super) fn pandas_type(dtype: &DataType) -> String {
    match dtype {
        DataType::String | DataType::Null => "object_".into(),
        DataType::Boolean => "bool_".into(),
        DataType::Datetime(_, None) => "datetime64".into(),
        DataType::Datetime(_, Some(_)) => "Timestamp".into(),
        DataType::Date => "date".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        d => d.to_string(),
    }
}

/// Type names Great Expectations users write (pandas, SQL, Python) for a polars type.
pub(super) fn type_names(dtype: &DataType) -> &'static [&'static str] {
    match dtype {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => &[
            "int", "int8", "int16", "int32", "int64", "integer", "bigint", "smallint",
        ],
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            &["int", "uint8", "uint16", "uint32", "uint64", "integer"]
        }
        DataType::Float32 | DataType::Float64 => {
            &["float", "float32", "float64", "double", "real", "numeric"]
        }
        // pandas keeps text in object columns: `object_` and `O` name them too.
        DataType::String => &[
            "str", "string", "object", "object_", "o", "varchar", "text", "utf8",
        ],
        DataType::Boolean => &["bool", "boolean"],
        // A time zone makes pandas' dtype DatetimeTZDtype, which `datetime64` does not name
        // (polars keeps zones only with its `timezones` feature, which this build omits).
        DataType::Datetime(_, None) => &[
            "datetime64",
            "datetime64[ns]",
            "datetime64[us]",
            "datetime64[ms]",
            "datetime",
            "timestamp",
        ],
        DataType::Datetime(_, Some(_)) => &["timestamp", "datetimetzdtype", "datetime"],
        DataType::Date => &["date"],
        _ => &[],
    }
}

pub(super) fn type_matches(dtype: &DataType, wanted: &str) -> bool {
    let w = wanted.to_ascii_lowercase();
    w == dtype.to_string().to_ascii_lowercase() || type_names(dtype).contains(&w.as_str())
}

/// Whether values of types `a` and `b` can be equal: numbers with numbers, otherwise the
/// same type (pandas never finds a number equal to a text).
pub(super) fn comparable(a: &DataType, b: &DataType) -> bool {
    (a.is_primitive_numeric() && b.is_primitive_numeric())
        || a == b
        || *a == DataType::Null
        || *b == DataType::Null
}

/// True on a present text value of `c` that `fails` rejects, one value at a time.
pub(super) fn rejected(c: &str, fails: Box<dyn Fn(&str) -> bool + Send + Sync>) -> Expr {
    col(c).map(
        move |column: Column| {
            let out: BooleanChunked = column.str()?.iter().map(|v| v.map(&fails)).collect();
            Ok(out.with_name(column.name().clone()).into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::Boolean)),
    )
}
