//! The spec's `expectations:`, with Great Expectations' names and arguments, and reading
//! a GX suite file as it is.

use serde::{Deserialize, Serialize};

use crate::SpecError;

/// One expectation, as Great Expectations writes it: a type and its keyword arguments.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Expectation {
    /// Great Expectations' expectation type, e.g. `expect_column_values_to_not_be_null`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Keyword arguments: `column`, `min_value`, `max_value`, `value_set`, `mostly`, ...
    #[serde(default)]
    pub kwargs: serde_json::Map<String, serde_json::Value>,
}

/// Python's JSON, which Great Expectations writes, as JSON: its bare `Infinity`,
/// `-Infinity` and `NaN` (a partition's open ends) become the strings `"Infinity"`,
/// `"-Infinity"` and `"NaN"`; text inside quotes is left alone.
pub fn python_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut quoted, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !quoted
            && let Some(word) = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|w| rest.starts_with(w))
        {
            out.push_str(&format!("\"{word}\""));
            rest = &rest[word.len()..];
            continue;
        }
        if quoted && !escaped && c == '\\' {
            escaped = true;
        } else {
            if c == '"' && !escaped {
                quoted = !quoted;
            }
            escaped = false;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Reads a Great Expectations suite file as it is (1.x: `name` and `expectations` with
/// `type`; 0.x: `expectation_suite_name` and `expectation_type`); returns the suite's name
/// and its expectations.
pub fn read_gx_suite(text: &str) -> Result<(String, Vec<Expectation>), SpecError> {
    let invalid = |m: String| SpecError::Invalid(format!("Great Expectations suite: {m}"));
    let doc: serde_json::Value =
        serde_json::from_str(&python_json(text)).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let name = doc
        .get("name")
        .or_else(|| doc.get("expectation_suite_name"))
        .and_then(|v| v.as_str())
        .unwrap_or("suite")
        .to_string();
    let list = doc
        .get("expectations")
        .and_then(|v| v.as_array())
        .ok_or_else(|| invalid("no \"expectations\" list".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let kind = e
            .get("type")
            .or_else(|| e.get("expectation_type"))
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid(format!("expectation {i} has no type")))?;
        let kwargs = match e.get("kwargs") {
            None | Some(serde_json::Value::Null) => serde_json::Map::new(),
            Some(serde_json::Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(invalid(format!(
                    "kwargs of expectation {i} is not an object: {other}"
                )));
            }
        };
        out.push(Expectation {
            kind: kind.into(),
            kwargs,
        });
    }
    Ok((name, out))
}
