//! Great Expectations' `row_condition`, parsed into a polars expression so a conditional
//! expectation stays in the suite's one lazy scan. GX hands a pandas condition to
//! `DataFrame.query` (Python); Tollgate evaluates no Python, so it reads the forms GX
//! documents and refuses anything else by name, never ignoring a condition:
//!
//! - comparisons `== != < <= > >=` between columns and literals (numbers, quoted text,
//!   `True`, `False`, `None`);
//! - `&` / `and`, `|` / `or`, `~` / `not`, parentheses;
//! - `x.isin([..])`, `x.isnull()`, `x.notnull()`, `x.isna()`, `x.notna()`;
//! - column names bare, in backticks (pandas) or as `col("name")` (the
//!   `great_expectations` parser, with `.notNull()` / `.isNull()`).

use polars::prelude::*;

/// A row condition that cannot be read, with the condition and where it went wrong.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("row_condition {condition:?} is not supported: {why}")]
pub struct ConditionError {
    /// The condition as written.
    pub condition: String,
    /// What was wrong, and where.
    pub why: String,
}

/// The parsers GX names in `condition_parser` whose conditions Tollgate reads.
pub const PARSERS: &[&str] = &["pandas", "great_expectations"];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Text(String),
    Number(f64),
    Op(&'static str),
}

const OPERATORS: &[&str] = &[
    "==", "!=", "<=", ">=", "<", ">", "&", "|", "~", "(", ")", "[", "]", ",", ".",
];

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or_else(|| format!("unclosed {c} at character {i}"))?;
            let quoted: String = chars[i + 1..i + 1 + end].iter().collect();
            out.push(if c == '`' {
                Token::Name(quoted)
            } else {
                Token::Text(quoted)
            });
            i += end + 2;
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            let value = number
                .replace('_', "")
                .parse()
                .map_err(|_| format!("{number:?} is not a number"))?;
            out.push(Token::Number(value));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Name(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPERATORS
                .iter()
                .find(|op| rest.starts_with(**op))
                .ok_or_else(|| format!("unexpected {c:?} at character {i}"))?;
            out.push(Token::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

/// An operand: a column or a literal (a list only inside `isin`).
#[derive(Debug, Clone)]
enum Operand {
    Column(String),
    Literal(Token),
    Predicate(Expr),
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    schema: &'a Schema,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek() == Some(&Token::Op(static_op(op))) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn require(&mut self, op: &str) -> Result<(), String> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(format!("expected {op:?} at token {}", self.at + 1))
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        if self.peek() == Some(&Token::Name(word.into())) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat("|") || self.keyword("or") {
            e = e.or(self.and()?);
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while self.eat("&") || self.keyword("and") {
            e = e.and(self.not()?);
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.eat("~") || self.keyword("not") {
            return Ok(self.not()?.not());
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        if self.eat("(") {
            let e = self.or()?;
            self.require(")")?;
            return Ok(e);
        }
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Token::Op(op @ ("==" | "!=" | "<" | "<=" | ">" | ">="))) => *op,
            _ => {
                return match left {
                    Operand::Predicate(e) => Ok(e),
                    Operand::Column(c) if self.schema.get(&c) == Some(&DataType::Boolean) => {
                        Ok(col(c.as_str()))
                    }
                    _ => Err(format!("expected a comparison at token {}", self.at + 1)),
                };
            }
        };
        self.at += 1;
        let right = self.operand()?;
        self.compare(left, op, right)
    }

    /// `column op literal`, `literal op column` or `column op column`. A comparison of a
    /// column with a literal of another kind (text against a date) is false for `==` and
    /// true for `!=`, as pandas has it; an ordering between them is an error. A text column
    /// against a number compares the texts that read as numbers.
    fn compare(&self, left: Operand, op: &str, right: Operand) -> Result<Expr, String> {
        let (left, op, right) = match (&left, &right) {
            (Operand::Literal(_), Operand::Column(_)) => (right, flipped(op), left),
            _ => (left, op, right),
        };
        let Operand::Column(c) = left else {
            return Err("a comparison needs a column on one side".into());
        };
        let dtype = self.schema.get(&c).cloned().unwrap_or(DataType::Null);
        // Each value by its own type: against a number, a text column's values that read
        // as numbers compare as those numbers (a pandas column of numbers and words
        // arrives as text); the words are unequal to it and never ordered with it.
        let text_against_number = matches!(dtype, DataType::String)
            && matches!(right, Operand::Literal(Token::Number(_)));
        let x = if text_against_number {
            col(c.as_str()).cast(DataType::Float64)
        } else {
            col(c.as_str())
        };
        // Every row, or none, as a column (a bare literal would be one row).
        let all = |holds: bool| {
            let present = x.clone().is_not_null();
            if holds {
                present.clone().or(present.not())
            } else {
                present.clone().and(present.not())
            }
        };
        let y = match right {
            Operand::Column(d) => col(d.as_str()),
            Operand::Literal(Token::Number(n)) if text_against_number => lit(n),
            Operand::Literal(t) => match literal(&t, &dtype) {
                Some(y) => y,
                None if op == "==" => return Ok(all(false)),
                None if op == "!=" => return Ok(all(true)),
                None => {
                    return Err(format!(
                        "cannot order column {c:?} ({dtype}) against {}",
                        shown(&t)
                    ));
                }
            },
            Operand::Predicate(_) => return Err("a predicate cannot be compared".into()),
        };
        // pandas compares a missing value as unequal to everything: `!=` holds, the
        // rest do not.
        Ok(match op {
            "==" => x.eq(y),
            "!=" => x.neq(y).fill_null(lit(true)),
            "<" => x.lt(y),
            "<=" => x.lt_eq(y),
            ">" => x.gt(y),
            _ => x.gt_eq(y),
        }
        .fill_null(lit(false)))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let column = match self.next() {
            Some(Token::Name(n)) if n == "col" && self.peek() == Some(&Token::Op("(")) => {
                self.at += 1;
                let Some(Token::Text(name)) = self.next() else {
                    return Err("col(...) takes a quoted column name".into());
                };
                self.require(")")?;
                name
            }
            Some(Token::Name(n)) if matches!(n.as_str(), "True" | "False" | "None") => {
                return Ok(Operand::Literal(Token::Name(n)));
            }
            Some(Token::Name(n)) => n,
            Some(t @ (Token::Text(_) | Token::Number(_))) => return Ok(Operand::Literal(t)),
            Some(Token::Op(op)) => return Err(format!("unexpected {op:?}")),
            None => return Err("the condition ends too early".into()),
        };
        if self.schema.get(&column).is_none() {
            return Err(format!("column {column:?} is not in the dataset"));
        }
        if !self.eat(".") {
            return Ok(Operand::Column(column));
        }
        let Some(Token::Name(method)) = self.next() else {
            return Err(format!("expected a method after {column}."));
        };
        if !METHODS.contains(&method.as_str()) {
            return Err(format!(
                "{column}.{method} is not supported; the methods are {}",
                METHODS.join(", ")
            ));
        }
        self.require("(")?;
        let x = col(column.as_str());
        let e = match method.as_str() {
            "isnull" | "isna" | "isNull" => x.is_null(),
            "notnull" | "notna" | "notNull" => x.is_not_null(),
            "isin" => {
                self.require("[")?;
                let dtype = self.schema.get(&column).cloned().unwrap_or(DataType::Null);
                let mut any = lit(false);
                while !self.eat("]") {
                    let t = self.next().ok_or("the list in isin is not closed")?;
                    if let Some(y) = literal(&t, &dtype) {
                        any = any.or(x.clone().eq(y));
                    }
                    self.eat(",");
                }
                any
            }
            other => return Err(format!("method {other}() is not supported")),
        };
        self.require(")")?;
        Ok(Operand::Predicate(e))
    }
}

/// The column methods a condition may call.
const METHODS: &[&str] = &[
    "isin", "isnull", "notnull", "isna", "notna", "isNull", "notNull",
];

fn static_op(op: &str) -> &'static str {
    OPERATORS.iter().find(|o| **o == op).copied().unwrap_or("")
}

fn flipped(op: &str) -> &'static str {
    match op {
        "<" => ">",
        "<=" => ">=",
        ">" => "<",
        ">=" => "<=",
        other => static_op(other),
    }
}

fn shown(t: &Token) -> String {
    match t {
        Token::Text(s) => format!("{s:?}"),
        Token::Number(n) => n.to_string(),
        Token::Name(n) => n.clone(),
        Token::Op(o) => o.to_string(),
    }
}

/// A literal as a value of the column's type, or `None` when the kinds differ.
fn literal(t: &Token, dtype: &DataType) -> Option<Expr> {
    match t {
        Token::Number(n) if dtype.is_primitive_numeric() => Some(lit(*n)),
        Token::Text(s) if matches!(dtype, DataType::String) => Some(lit(s.as_str())),
        Token::Text(s) if dtype.is_temporal() => {
            let micros = crate::validate::timestamp(s).ok()?;
            Some(
                lit(micros)
                    .cast(DataType::Datetime(TimeUnit::Microseconds, None))
                    .cast(dtype.clone()),
            )
        }
        Token::Name(b) if b == "True" && *dtype == DataType::Boolean => Some(lit(true)),
        Token::Name(b) if b == "False" && *dtype == DataType::Boolean => Some(lit(false)),
        Token::Name(n) if n == "None" => Some(lit(NULL)),
        _ => None,
    }
}

/// Parses `condition` (for `parser`, one of [`PARSERS`]) into a predicate over `schema`.
pub fn parse(condition: &str, parser: &str, schema: &Schema) -> Result<Expr, ConditionError> {
    let fail = |why: String| ConditionError {
        condition: condition.to_string(),
        why,
    };
    if !PARSERS.contains(&parser) {
        return Err(fail(format!(
            "condition_parser {parser:?} is unknown; use one of {}",
            PARSERS.join(", ")
        )));
    }
    let mut p = Parser {
        tokens: tokens(condition).map_err(&fail)?,
        at: 0,
        schema,
    };
    let e = p.or().map_err(&fail)?;
    if p.at < p.tokens.len() {
        return Err(fail(format!(
            "unexpected {} at the end",
            shown(&p.tokens[p.at])
        )));
    }
    Ok(e)
}

#[cfg(test)]
mod tests;
