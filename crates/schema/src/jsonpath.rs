//! The JSONPath subset used by CRD `additionalPrinterColumns[].jsonPath` and
//! kubectl (client-go `util/jsonpath`), plus Table cell formatting.
//!
//! Supported: `.field`, `['field']`, `\.` escapes in names, `[n]` (negative
//! counts from the end), `[a:b:c]`, `[n,m]`, `[*]`, `.*`, `..field`, and
//! filters `[?(@.a.b == "x")]` with `== != < > <= >=` or bare existence
//! `[?(@.a)]`. An optional surrounding `{...}` and leading `$` are accepted.
//! Missing keys yield no results (printer columns then show `<none>`).

use std::cmp::Ordering;

use serde_json::Value;

use crate::formats;
use crate::schema::MAX_DEPTH;

/// A JSONPath parse error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath {path:?} at offset {offset}: {message}")]
pub struct Error {
    /// The expression as given.
    pub path: String,
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed JSONPath expression; see [`parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    /// All children of an object or array.
    Wildcard,
    /// The current node and all its descendants (`..`).
    Descendants,
    Indices(Vec<i64>),
    Slice {
        start: Option<i64>,
        end: Option<i64>,
        step: i64,
    },
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    cmp: Option<(Op, Operand)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Vec<Step>),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Parses an expression such as `.status.conditions[?(@.type=="Ready")].status`.
pub fn parse(expr: &str) -> Result<JsonPath, Error> {
    let trimmed = expr.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(trimmed);
    let inner = inner.strip_prefix('$').unwrap_or(inner);
    let mut p = Parser {
        src: inner,
        pos: 0,
        whole: expr,
    };
    let steps = p.steps(false, 0)?;
    if p.pos < p.src.len() {
        return Err(p.err("unexpected character"));
    }
    Ok(JsonPath { steps })
}

impl JsonPath {
    /// All values the expression selects, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.steps, vec![root])
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    whole: &'a str,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> Error {
        Error {
            path: self.whole.to_string(),
            offset: self.pos,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.src[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    /// Parses steps until the end, or (in a filter) until an operator or `)`.
    fn steps(&mut self, in_filter: bool, depth: usize) -> Result<Vec<Step>, Error> {
        if depth > 8 {
            return Err(self.err("filters nested too deeply"));
        }
        let mut steps = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                '.' if self.eat("..") => {
                    steps.push(Step::Descendants);
                    if self.peek() != Some('[') {
                        steps.push(self.field_or_wildcard()?);
                    }
                }
                '.' => {
                    self.pos += 1;
                    if self.peek().is_none() && steps.is_empty() {
                        break; // `.` alone selects the root
                    }
                    steps.push(self.field_or_wildcard()?);
                }
                '[' => {
                    self.pos += 1;
                    steps.push(self.bracket(depth)?);
                }
                _ if in_filter => break,
                _ if steps.is_empty() => steps.push(self.field_or_wildcard()?),
                _ => return Err(self.err("expected '.' or '['")),
            }
        }
        Ok(steps)
    }

    fn field_or_wildcard(&mut self) -> Result<Step, Error> {
        if self.eat("*") {
            return Ok(Step::Wildcard);
        }
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                self.pos += 1;
                match self.peek() {
                    Some(e) => {
                        name.push(e);
                        self.pos += e.len_utf8();
                    }
                    None => return Err(self.err("dangling escape")),
                }
                continue;
            }
            if matches!(
                c,
                '.' | '[' | ']' | '(' | ')' | '=' | '!' | '<' | '>' | ',' | '}' | '{'
            ) || c.is_whitespace()
            {
                break;
            }
            name.push(c);
            self.pos += c.len_utf8();
        }
        if name.is_empty() {
            return Err(self.err("expected a field name"));
        }
        Ok(Step::Field(name))
    }

    fn bracket(&mut self, depth: usize) -> Result<Step, Error> {
        self.skip_ws();
        let step = if self.eat("?(") {
            let f = self.filter(depth)?;
            self.skip_ws();
            if !self.eat(")") {
                return Err(self.err("expected ')' closing the filter"));
            }
            Step::Filter(f)
        } else if self.eat("*") {
            Step::Wildcard
        } else if matches!(self.peek(), Some('\'' | '"')) {
            Step::Field(self.quoted()?)
        } else {
            self.indices()?
        };
        self.skip_ws();
        if !self.eat("]") {
            return Err(self.err("expected ']'"));
        }
        Ok(step)
    }

    fn quoted(&mut self) -> Result<String, Error> {
        let Some(q) = self.peek() else {
            return Err(self.err("expected a quote"));
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(c) if c == q => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.pos += 1;
                    if let Some(e) = self.peek() {
                        out.push(e);
                        self.pos += e.len_utf8();
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    fn int(&mut self) -> Result<Option<i64>, Error> {
        self.skip_ws();
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        if text.is_empty() {
            return Ok(None);
        }
        let n = text.parse().map_err(|_| self.err("invalid integer"))?;
        self.skip_ws();
        Ok(Some(n))
    }

    fn indices(&mut self) -> Result<Step, Error> {
        let first = self.int()?;
        if self.eat(":") {
            let end = self.int()?;
            let step = if self.eat(":") {
                self.int()?.unwrap_or(1)
            } else {
                1
            };
            if step <= 0 {
                return Err(self.err("slice step must be positive"));
            }
            return Ok(Step::Slice {
                start: first,
                end,
                step,
            });
        }
        let Some(first) = first else {
            return Err(self.err("expected an index"));
        };
        let mut list = vec![first];
        while self.eat(",") {
            list.push(self.int()?.ok_or_else(|| self.err("expected an index"))?);
        }
        Ok(Step::Indices(list))
    }

    fn filter(&mut self, depth: usize) -> Result<Filter, Error> {
        self.skip_ws();
        let left = self.operand(depth)?;
        self.skip_ws();
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(s, _)| self.eat(s))
        .map(|(_, op)| op);
        let cmp = match op {
            Some(op) => {
                self.skip_ws();
                Some((op, self.operand(depth)?))
            }
            None => None,
        };
        Ok(Filter { left, cmp })
    }

    fn operand(&mut self, depth: usize) -> Result<Operand, Error> {
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Path(self.steps(true, depth + 1)?))
            }
            Some('\'' | '"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            _ => self.literal(),
        }
    }

    fn literal(&mut self) -> Result<Operand, Error> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
        {
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        serde_json::from_str::<Value>(text)
            .ok()
            .filter(|v| !v.is_object() && !v.is_array())
            .map(Operand::Literal)
            .ok_or_else(|| self.err("expected a literal"))
    }
}

fn eval<'a>(steps: &[Step], mut current: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            apply(step, v, &mut next);
        }
        current = next;
    }
    current
}

fn apply<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => out.extend(v.get(name.as_str())),
        Step::Wildcard => match v {
            Value::Object(o) => out.extend(o.values()),
            Value::Array(a) => out.extend(a.iter()),
            _ => {}
        },
        Step::Descendants => descendants(v, out, 0),
        Step::Indices(list) => {
            if let Value::Array(a) = v {
                out.extend(
                    list.iter()
                        .filter_map(|i| resolve(*i, a.len()).and_then(|i| a.get(i))),
                );
            }
        }
        Step::Slice { start, end, step } => {
            if let Value::Array(a) = v {
                slice(a, *start, *end, *step, out);
            }
        }
        Step::Filter(f) => {
            if let Value::Array(a) = v {
                out.extend(a.iter().filter(|item| f.matches(item)));
            }
        }
    }
}

fn resolve(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { len + i } else { i };
    (0..len)
        .contains(&i)
        .then(|| usize::try_from(i).ok())
        .flatten()
}

fn slice<'a>(
    a: &'a [Value],
    start: Option<i64>,
    end: Option<i64>,
    step: i64,
    out: &mut Vec<&'a Value>,
) {
    let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let (s, e) = (clamp(start.unwrap_or(0)), clamp(end.unwrap_or(len)));
    let mut i = s;
    while i < e {
        if let Some(v) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
            out.push(v);
        }
        i = i.saturating_add(step);
    }
}

fn descendants<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
    out.push(v);
    if depth >= MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(o) => o.values().for_each(|c| descendants(c, out, depth + 1)),
        Value::Array(a) => a.iter().for_each(|c| descendants(c, out, depth + 1)),
        _ => {}
    }
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        let left = self.left.resolve(item);
        let Some((op, right)) = &self.cmp else {
            return left.is_some();
        };
        match (left, right.resolve(item)) {
            (Some(l), Some(r)) => compare(l, r).is_some_and(|ord| op.holds(ord)),
            _ => false,
        }
    }
}

impl Operand {
    fn resolve<'a>(&'a self, item: &'a Value) -> Option<&'a Value> {
        match self {
            Operand::Literal(v) => Some(v),
            Operand::Path(steps) => eval(steps, vec![item]).into_iter().next(),
        }
    }
}

impl Op {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Lt => ord == Ordering::Less,
            Op::Gt => ord == Ordering::Greater,
            Op::Le => ord != Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
        }
    }
}

/// Orders two scalars of the same kind; mixed kinds never match.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ if a == b => Some(Ordering::Equal),
        _ => None,
    }
}

/// Renders the first selected value as a Table cell of a printer column of
/// `column_type` (`string`, `integer`, `number`, `boolean`, `date`), the way
/// kube-apiserver's CRD table convertor does. No value, or a value of the
/// wrong kind, gives `null` (shown as `<none>`). Dates stay RFC 3339 strings
/// normalized to UTC (kubectl humanizes them); unparsable dates give `"<invalid>"`.
pub fn format_cell(values: &[&Value], column_type: &str) -> Value {
    let Some(v) = values.first().copied().filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match (column_type, v) {
        ("string", Value::String(s)) => Value::String(s.clone()),
        ("string", other) => Value::String(other.to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, number_value),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => match formats::parse_datetime(s) {
            Some(secs) => Value::String(formats::format_rfc3339(secs)),
            None => Value::String("<invalid>".into()),
        },
        _ => Value::Null,
    }
}

/// Go encodes float64 `5` as `5`; keep integral numbers integral in JSON.
fn number_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj() -> Value {
        json!({
            "metadata": {"name": "n", "labels": {"app": "web", "k8s.io/x": "dotted"}},
            "spec": {"replicas": 3, "items": [{"name": "a", "n": 1}, {"name": "b", "n": 5}, {"name": "c", "n": 9}]},
            "status": {"conditions": [
                {"type": "Progressing", "status": "True"},
                {"type": "Ready", "status": "False"}
            ]}
        })
    }

    #[test]
    fn finds() {
        let o = obj();
        let cases: Vec<(&str, Vec<Value>)> = vec![
            (".spec.replicas", vec![json!(3)]),
            ("{.spec.replicas}", vec![json!(3)]),
            ("$.spec.replicas", vec![json!(3)]),
            (".metadata.labels.app", vec![json!("web")]),
            (r".metadata.labels.k8s\.io/x", vec![json!("dotted")]),
            (".metadata.labels['k8s.io/x']", vec![json!("dotted")]),
            (
                r#".status.conditions[?(@.type=="Ready")].status"#,
                vec![json!("False")],
            ),
            (
                ".status.conditions[?(@.type == 'Ready')].status",
                vec![json!("False")],
            ),
            (
                ".status.conditions[?(@.type!=\"Ready\")].type",
                vec![json!("Progressing")],
            ),
            (".spec.items[?(@.n > 2)].name", vec![json!("b"), json!("c")]),
            (".spec.items[?(@.n<=5)].name", vec![json!("a"), json!("b")]),
            (".spec.items[?(@.missing)].name", vec![]),
            (".spec.items[?(@.n)].n", vec![json!(1), json!(5), json!(9)]),
            (".spec.items[0].name", vec![json!("a")]),
            (".spec.items[-1].name", vec![json!("c")]),
            (".spec.items[5].name", vec![]),
            (
                ".spec.items[*].name",
                vec![json!("a"), json!("b"), json!("c")],
            ),
            (".spec.items[0,2].name", vec![json!("a"), json!("c")]),
            (".spec.items[1:].name", vec![json!("b"), json!("c")]),
            (".spec.items[0:3:2].name", vec![json!("a"), json!("c")]),
            (
                "..name",
                vec![json!("n"), json!("a"), json!("b"), json!("c")],
            ),
            (".spec.missing.deeper", vec![]),
            (".spec.replicas.x", vec![]),
        ];
        for (expr, want) in cases {
            let path = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let got: Vec<Value> = path.find(&o).into_iter().cloned().collect();
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for expr in [
            ".spec[",
            ".spec[?(@.a==)]",
            ".a[1:2:0]",
            ".a[x]",
            ".a..",
            "..",
            ".a\\",
            ".a['x",
        ] {
            assert!(parse(expr).is_err(), "{expr}");
        }
    }

    #[test]
    fn cells() {
        let cases = [
            (json!("x"), "string", json!("x")),
            (json!(3), "string", json!("3")),
            (json!({"a": 1}), "string", json!("{\"a\":1}")),
            (json!(3), "integer", json!(3)),
            (json!(3.7), "integer", json!(3)),
            (json!("3"), "integer", Value::Null),
            (json!(2), "number", json!(2)),
            (json!(2.5), "number", json!(2.5)),
            (json!(true), "boolean", json!(true)),
            (json!("true"), "boolean", Value::Null),
            (
                json!("2024-01-02T03:04:05+01:00"),
                "date",
                json!("2024-01-02T02:04:05Z"),
            ),
            (json!("yesterday"), "date", json!("<invalid>")),
            (json!(null), "string", Value::Null),
        ];
        for (v, ty, want) in cases {
            assert_eq!(format_cell(&[&v], ty), want, "{v} as {ty}");
        }
        assert_eq!(format_cell(&[], "string"), Value::Null);
    }
}
