//! JUnit XML, as pytest (`--junitxml`), JUnit, Go's gotestsum and most CI tools write it:
//! one [`Case`] per `<testcase>`, failed when it holds a `<failure>` or `<error>`, skipped
//! when it holds `<skipped>`.

use quick_xml::{Reader, events::Event};

/// The largest JUnit file read.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

/// How a test case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Passed,
    /// An assertion failed.
    Failed,
    /// It raised before it could pass or fail.
    Error,
    /// It did not run.
    Skipped,
}

/// One test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// `classname::name`, as pytest prints it (`tests.model.test_quality::test_auc`).
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The failure's, error's or skip's message, first line.
    pub message: String,
    /// Seconds it took, as the file says.
    pub seconds: f64,
}

/// Why a JUnit file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    /// It is larger than [`MAX_BYTES`].
    #[error("the JUnit file is {0} bytes, over the {MAX_BYTES}-byte limit")]
    TooLarge(usize),
    /// It is not well-formed XML.
    #[error("the JUnit file is not valid XML: {0}")]
    Xml(String),
}

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// The test cases of a JUnit XML document.
pub fn parse(text: &str) -> Result<Vec<Case>, JunitError> {
    if text.len() > MAX_BYTES {
        return Err(JunitError::TooLarge(text.len()));
    }
    let mut reader = Reader::from_str(text);
    let mut cases = Vec::new();
    let mut open: Option<Case> = None;
    let mut in_result = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| JunitError::Xml(e.to_string()))?;
        match event {
            Event::Empty(e) if e.name().as_ref() == b"testcase" => cases.push(case_of(&e)),
            Event::Start(e) if e.name().as_ref() == b"testcase" => {
                if let Some(previous) = open.replace(case_of(&e)) {
                    cases.push(previous);
                }
            }
            Event::Start(e) | Event::Empty(e)
                if matches!(e.name().as_ref(), b"failure" | b"error" | b"skipped") =>
            {
                if let Some(case) = open.as_mut() {
                    case.outcome = match e.name().as_ref() {
                        b"failure" => Outcome::Failed,
                        b"error" => Outcome::Error,
                        _ => Outcome::Skipped,
                    };
                    case.message = attr(&e, b"message")
                        .unwrap_or_default()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(500)
                        .collect();
                    in_result = case.message.is_empty();
                }
            }
            Event::Text(t) if in_result => {
                if let (Some(case), Ok(text)) = (open.as_mut(), t.decode()) {
                    let first = text.trim().lines().last().unwrap_or_default();
                    case.message = first.chars().take(500).collect();
                }
                in_result = false;
            }
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                if let Some(case) = open.take() {
                    cases.push(case);
                }
                in_result = false;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(case) = open.take() {
        cases.push(case);
    }
    Ok(cases)
}

/// A `<testcase>` element's case, passed until a result inside it says otherwise.
fn case_of(e: &quick_xml::events::BytesStart<'_>) -> Case {
    let name = attr(e, b"name").unwrap_or_default();
    let name = match attr(e, b"classname").filter(|c| !c.is_empty()) {
        Some(class) => format!("{class}::{name}"),
        None => name,
    };
    Case {
        name,
        outcome: Outcome::Passed,
        message: String::new(),
        seconds: attr(e, b"time").and_then(|t| t.parse().ok()).unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests;
