//! Great Expectations' suite parameter expressions (`{"$PARAMETER": "..."}`) for bounds:
//! `now()`, `datetime(2003, 1, 1)`, `timedelta(weeks=52*100)`, numbers, and `+ - * /` with
//! parentheses between them, as GX's evaluator reads them. A time plus or minus a
//! timedelta is a time; a timedelta may be scaled by a number. Parameters that name other
//! parameters (`urn:...`) are not suite-local and are refused.

use chrono::{NaiveDate, Utc};

/// What an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Param {
    /// A plain number.
    Number(f64),
    /// A point in time, in microseconds since the Unix epoch (UTC).
    Time(i64),
    /// A duration, in microseconds.
    Delta(f64),
}

/// Evaluates `expression` with `now` (microseconds since the epoch) as `now()`.
pub(super) fn evaluate(expression: &str, now: i64) -> Result<Param, String> {
    if expression.trim_start().starts_with("urn:") {
        return Err(format!(
            "suite parameter {expression:?} names another validation's result, which is not a suite parameter Tollgate can evaluate: give its value"
        ));
    }
    let tokens = tokens(expression)?;
    let mut p = Parser {
        tokens: &tokens,
        at: 0,
        now,
    };
    let value = p.sum()?;
    match p.tokens.get(p.at) {
        None => Ok(value),
        Some(t) => Err(format!(
            "unexpected {t:?} in suite parameter {expression:?}"
        )),
    }
}

/// [`evaluate`] at the current time.
pub(super) fn evaluate_now(expression: &str) -> Result<Param, String> {
    evaluate(expression, Utc::now().timestamp_micros())
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Op(char),
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            let n = number
                .parse()
                .map_err(|_| format!("{number:?} is not a number"))?;
            out.push(Token::Number(n));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Name(chars[start..i].iter().collect()));
        } else if "+-*/(),=".contains(c) {
            out.push(Token::Op(c));
            i += 1;
        } else {
            return Err(format!("{c:?} is not part of a suite parameter expression"));
        }
    }
    Ok(out)
}

/// A call's positional arguments, then its `name=value` ones.
type Arguments = (Vec<f64>, Vec<(String, f64)>);

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    now: i64,
}

impl Parser<'_> {
    fn eat(&mut self, op: char) -> bool {
        if self.tokens.get(self.at) == Some(&Token::Op(op)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn sum(&mut self) -> Result<Param, String> {
        let mut value = self.product()?;
        loop {
            if self.eat('+') {
                value = add(value, self.product()?, 1.0)?;
            } else if self.eat('-') {
                value = add(value, self.product()?, -1.0)?;
            } else {
                return Ok(value);
            }
        }
    }

    fn product(&mut self) -> Result<Param, String> {
        let mut value = self.unary()?;
        loop {
            if self.eat('*') {
                value = scale(value, self.unary()?, false)?;
            } else if self.eat('/') {
                value = scale(value, self.unary()?, true)?;
            } else {
                return Ok(value);
            }
        }
    }

    fn unary(&mut self) -> Result<Param, String> {
        if self.eat('-') {
            return scale(self.unary()?, Param::Number(-1.0), false);
        }
        self.eat('+');
        self.atom()
    }

    fn atom(&mut self) -> Result<Param, String> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        match token {
            Some(Token::Number(n)) => Ok(Param::Number(n)),
            Some(Token::Op('(')) => {
                let value = self.sum()?;
                if !self.eat(')') {
                    return Err("a ( without its )".into());
                }
                Ok(value)
            }
            Some(Token::Name(name)) => {
                if !self.eat('(') {
                    return Err(format!(
                        "{name:?} is not a suite parameter Tollgate can evaluate: use now(), datetime(...) or timedelta(...)"
                    ));
                }
                let (positional, named) = self.arguments()?;
                call(&name, &positional, &named, self.now)
            }
            other => Err(format!("expected a value, found {other:?}")),
        }
    }

    /// The arguments of a call, after its `(`: positional ones, then `name=value` ones.
    fn arguments(&mut self) -> Result<Arguments, String> {
        let (mut positional, mut named) = (Vec::new(), Vec::new());
        if self.eat(')') {
            return Ok((positional, named));
        }
        loop {
            let keyword = match (self.tokens.get(self.at), self.tokens.get(self.at + 1)) {
                (Some(Token::Name(n)), Some(Token::Op('='))) => {
                    let n = n.clone();
                    self.at += 2;
                    Some(n)
                }
                _ => None,
            };
            let Param::Number(value) = self.sum()? else {
                return Err("a call's arguments must be numbers".into());
            };
            match keyword {
                Some(k) => named.push((k, value)),
                None if named.is_empty() => positional.push(value),
                None => return Err("a positional argument after a keyword one".into()),
            }
            if self.eat(')') {
                return Ok((positional, named));
            }
            if !self.eat(',') {
                return Err("expected , or ) between arguments".into());
            }
        }
    }
}

/// `a + sign * b`, where the kinds allow it.
fn add(a: Param, b: Param, sign: f64) -> Result<Param, String> {
    Ok(match (a, b) {
        (Param::Number(x), Param::Number(y)) => Param::Number(x + sign * y),
        (Param::Time(t), Param::Delta(d)) => Param::Time(t + (sign * d) as i64),
        (Param::Delta(d), Param::Time(t)) if sign > 0.0 => Param::Time(t + d as i64),
        (Param::Delta(x), Param::Delta(y)) => Param::Delta(x + sign * y),
        (Param::Time(x), Param::Time(y)) if sign < 0.0 => Param::Delta((x - y) as f64),
        (a, b) => return Err(format!("cannot add or subtract {a:?} and {b:?}")),
    })
}

/// `a * b`, or `a / b` with `divide`.
fn scale(a: Param, b: Param, divide: bool) -> Result<Param, String> {
    let by = |x: f64, y: f64| {
        if !divide {
            Ok(x * y)
        } else if y == 0.0 {
            Err("division by zero in a suite parameter".to_string())
        } else {
            Ok(x / y)
        }
    };
    Ok(match (a, b) {
        (Param::Number(x), Param::Number(y)) => Param::Number(by(x, y)?),
        (Param::Delta(d), Param::Number(n)) => Param::Delta(by(d, n)?),
        (Param::Number(n), Param::Delta(d)) if !divide => Param::Delta(n * d),
        (a, b) => return Err(format!("cannot multiply or divide {a:?} and {b:?}")),
    })
}

/// `now()`, `datetime(year, month, day[, hour, minute, second])` (UTC) and
/// `timedelta(days, seconds, microseconds, milliseconds, minutes, hours, weeks)`, as
/// Python orders them, positional or by name.
fn call(
    name: &str,
    positional: &[f64],
    named: &[(String, f64)],
    now: i64,
) -> Result<Param, String> {
    let fields = |order: &[&str]| -> Result<Vec<f64>, String> {
        if positional.len() > order.len() {
            return Err(format!("{name}() takes at most {} arguments", order.len()));
        }
        let mut values = vec![f64::NAN; order.len()];
        values[..positional.len()].copy_from_slice(positional);
        for (key, value) in named {
            let i = order
                .iter()
                .position(|o| o == key)
                .ok_or_else(|| format!("{name}() has no argument {key:?}"))?;
            values[i] = *value;
        }
        Ok(values)
    };
    match name {
        "now" if positional.is_empty() && named.is_empty() => Ok(Param::Time(now)),
        "datetime" => {
            let v = fields(&["year", "month", "day", "hour", "minute", "second"])?;
            if v[..3].iter().any(|x| x.is_nan()) {
                return Err("datetime() needs a year, a month and a day".into());
            }
            let or_zero = |x: f64| if x.is_nan() { 0 } else { x as u32 };
            NaiveDate::from_ymd_opt(v[0] as i32, v[1] as u32, v[2] as u32)
                .and_then(|d| d.and_hms_opt(or_zero(v[3]), or_zero(v[4]), or_zero(v[5])))
                .map(|t| Param::Time(t.and_utc().timestamp_micros()))
                .ok_or_else(|| format!("datetime{:?} is not a date", &v[..3]))
        }
        "timedelta" => {
            let order = [
                "days",
                "seconds",
                "microseconds",
                "milliseconds",
                "minutes",
                "hours",
                "weeks",
            ];
            let micros_per = [86_400e6, 1e6, 1.0, 1e3, 60e6, 3_600e6, 604_800e6];
            let v = fields(&order)?;
            Ok(Param::Delta(
                v.iter()
                    .zip(micros_per)
                    .filter(|(x, _)| !x.is_nan())
                    .map(|(x, per)| x * per)
                    .sum(),
            ))
        }
        _ => Err(format!(
            "{name}() is not a suite parameter Tollgate can evaluate: use now(), datetime(...) or timedelta(...)"
        )),
    }
}

#[cfg(test)]
mod tests;
