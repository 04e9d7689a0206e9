//! The expression language of `relevant` and `constraint` cells: a documented subset of
//! XLSForm/XPath, parsed once when a survey is loaded so that a typo is caught by the coordinator
//! who wrote it instead of by an enumerator in the field.
//!
//! # Syntax
//!
//! - `${name}`: the answer to question `name`; `.`: the answer being checked (constraints only)
//! - numbers (`12`, `3.5`) and strings in single or double quotes (`'yes'`, `"no"`)
//! - `=` `!=` `<` `<=` `>` `>=`, `and`, `or`, `not(x)`
//! - `+` `-` `*` `div` `mod`, unary minus, parentheses
//! - `selected(${x}, 'v')`, `count-selected(x)`, `string-length(x)`, `regex(x, 'pattern')`,
//!   `today()`
//!
//! Anything else (other functions, `/`, `//`, `|`, predicates `[...]`, bare names, wrong
//! argument counts) is a parse error that lists what is supported: an expression we cannot
//! evaluate must never be treated as true.
//!
//! # Semantics (ODK / XPath 1.0 where sensible)
//!
//! - An unanswered `${x}` is the empty string. Integer and decimal answers are numbers, a valid
//!   answer to a `date` question is a date, everything else is a string.
//! - Truth: a non-empty string, a non-zero number (not NaN) and any date are true.
//! - Number conversion: a string is trimmed and read as `-?digits[.digits]`; a date, or a string
//!   in date (`YYYY-MM-DD`) or RFC 3339 datetime form, counts as days since 1970-01-01
//!   (fractional for a datetime), as in ODK, so `today() - ${dob}` is an age in days; anything
//!   else (including the empty string) is NaN. Arithmetic always yields a number, never a date.
//! - Comparisons: with a boolean on either side, `=`/`!=` compare truth values and the others
//!   compare numbers; with a date or a number on either side, both sides are compared as
//!   numbers (so a date compares as days, and a string that is neither a number nor a date makes
//!   the comparison false); two strings that both look like dates or
//!   datetimes are compared as dates (a date is midnight UTC, a datetime its instant, so
//!   `2024-06-15T08:00:00Z` is later than `2024-06-15`), other strings as text (`<` is code-point order). Any
//!   comparison involving NaN is false except `!=`, which is true.
//! - `div` by zero gives ±Infinity or NaN, `mod` by zero gives NaN, as in XPath.
//! - `selected(a, b)`: whether the space-separated list `a` contains `b`;
//!   `count-selected(a)`: how many names `a` holds; `string-length(a)`: characters in `a`.
//! - `regex(a, 'p')`: whether the whole of `a` matches `p` (the pattern is anchored at both
//!   ends, as ODK documents it); `p` must be a literal so it is compiled, and rejected if bad,
//!   when the survey is loaded.
//! - `today()`: the date given by the caller in the validation context.

use std::fmt;

use regex::Regex;
use time::Date;

use lex::{TokKind, Token, lex};

/// A syntax error in a `relevant` or `constraint` expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// A character outside the supported syntax.
    #[error("unexpected `{found}` at column {column}; {SUPPORTED}")]
    UnexpectedChar { found: String, column: usize },
    /// A well-formed token in a place where it cannot go.
    #[error("unexpected {found} at column {column}; expected {expected}")]
    UnexpectedToken {
        found: String,
        expected: &'static str,
        column: usize,
    },
    /// The text ended too early.
    #[error("expression ends too early; expected {expected}")]
    UnexpectedEnd { expected: &'static str },
    /// An empty expression cell is simply absent; this is for an expression of only spaces.
    #[error("expression is empty; leave the cell empty instead")]
    Empty,
    /// A quoted string without its closing quote.
    #[error("string starting at column {column} is not closed; add the closing quote")]
    UnclosedString { column: usize },
    /// `${` without a valid name and `}`.
    #[error("bad question reference at column {column}; write `${{name}}`")]
    BadReference { column: usize },
    /// A function that is not in the subset.
    #[error("unknown function `{name}()`; {SUPPORTED}")]
    UnknownFunction { name: String },
    /// A bare name that is neither an operator nor a function call.
    #[error(
        "unexpected name `{name}` at column {column}; refer to answers as `${{{name}}}`; {SUPPORTED}"
    )]
    BareName { name: String, column: usize },
    /// A supported function called with the wrong number of arguments.
    #[error("`{name}()` takes {expected}, got {got}")]
    WrongArity {
        name: &'static str,
        expected: &'static str,
        got: usize,
    },
    /// `regex()` with a pattern that is not a literal string.
    #[error("the pattern of `regex()` must be a quoted string")]
    RegexNotLiteral,
    /// A pattern the regex engine rejects or that would be too large.
    #[error("bad pattern in `regex()`: {0}; regex() uses Rust regex syntax")]
    BadRegex(String),
    /// Input that would nest deeper than we evaluate safely.
    #[error("expression is nested too deeply (limit {MAX_DEPTH}); simplify it")]
    TooDeep,
    /// Input longer than any sensible form expression.
    #[error("expression is longer than {MAX_LEN} bytes; simplify it")]
    TooLong,
}

const SUPPORTED: &str = "supported: ${name}, `.`, numbers, 'strings', = != < <= > >=, and, or, \
     + - * div mod, parentheses, not(), selected(), count-selected(), string-length(), regex(), \
     today()";

const MAX_LEN: usize = 4096;
const MAX_DEPTH: usize = 64;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A parsed `relevant` or `constraint` expression together with its source text.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    root: Node,
}

impl Expr {
    /// Parses `text`, rejecting anything outside the supported subset.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        if text.len() > MAX_LEN {
            return Err(ExprError::TooLong);
        }
        let tokens = lex(text)?;
        if tokens.is_empty() {
            return Err(ExprError::Empty);
        }
        let mut parser = Parser {
            tokens,
            pos: 0,
            nesting: 0,
        };
        let root = parser.or_expr()?;
        if let Some(tok) = parser.peek() {
            return Err(ExprError::UnexpectedToken {
                found: tok.kind.describe(),
                expected: "an operator or the end of the expression",
                column: tok.column,
            });
        }
        if root.depth() > MAX_DEPTH {
            return Err(ExprError::TooDeep);
        }
        Ok(Expr {
            source: text.to_owned(),
            root,
        })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Names of the questions referenced as `${name}`, in order of appearance, with repeats.
    pub fn references(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.root.visit(&mut |n| {
            if let Node::Ref(name) = n {
                out.push(name.as_str());
            }
        });
        out
    }

    /// Whether the expression uses `.`, the answer being checked.
    pub fn uses_current(&self) -> bool {
        let mut found = false;
        self.root
            .visit(&mut |n| found |= matches!(n, Node::Current));
        found
    }

    /// A fully parenthesised rendering of the parse tree, to show how it was understood.
    pub fn canonical(&self) -> String {
        self.root.to_string()
    }

    pub(crate) fn evaluate(&self, env: &dyn Env) -> Value {
        self.root.eval(env)
    }

    pub(crate) fn is_true(&self, env: &dyn Env) -> bool {
        self.evaluate(env).truthy()
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// What an expression sees: answers by name, the answer being checked and today's date.
pub(crate) trait Env {
    fn lookup(&self, name: &str) -> Value;
    fn current(&self) -> Value;
    fn today(&self) -> Date;
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    Date(Date),
}

impl Value {
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Bool(b) => *b,
            Value::Date(_) => true,
        }
    }

    fn number(&self) -> f64 {
        match self {
            Value::Num(n) => *n,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Date(d) => days_since_epoch(*d),
            Value::Str(s) => {
                let n = parse_number(s);
                if n.is_nan() {
                    temporal_days(s).unwrap_or(f64::NAN)
                } else {
                    n
                }
            }
        }
    }

    fn string(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(n) => format_number(*n),
            Value::Bool(b) => b.to_string(),
            Value::Date(d) => format_date(*d),
        }
    }

    /// The value as days since the epoch when it is, or looks like, a date or datetime.
    fn days(&self) -> Option<f64> {
        match self {
            Value::Date(d) => Some(days_since_epoch(*d)),
            Value::Str(s) => temporal_days(s),
            Value::Num(_) | Value::Bool(_) => None,
        }
    }
}

/// Reads XPath's number syntax; anything else is NaN.
pub(crate) fn parse_number(s: &str) -> f64 {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let mut seen_digit = false;
    let mut seen_dot = false;
    for c in digits.chars() {
        match c {
            '0'..='9' => seen_digit = true,
            '.' if !seen_dot => seen_dot = true,
            _ => return f64::NAN,
        }
    }
    if !seen_digit {
        return f64::NAN;
    }
    t.parse().unwrap_or(f64::NAN)
}

fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".to_owned()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        n.to_string()
    }
}

pub(crate) fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn days_since_epoch(d: Date) -> f64 {
    f64::from(d.to_julian_day() - time::macros::date!(1970 - 01 - 01).to_julian_day())
}

/// Parses `YYYY-MM-DD` strictly (four-digit year, real calendar day).
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    let month = time::Month::try_from(month).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

pub(crate) fn parse_datetime(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn temporal_days(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Some(d) = parse_date(s) {
        return Some(days_since_epoch(d));
    }
    // Whole seconds are enough precision to order answers; i64 → f64 is exact for them.
    parse_datetime(s).map(|dt| dt.unix_timestamp() as f64 / 86_400.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "=",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "div",
            BinOp::Mod => "mod",
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Num(f64),
    Str(String),
    Ref(String),
    Current,
    Neg(Box<Node>),
    Not(Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    Selected(Box<Node>, Box<Node>),
    CountSelected(Box<Node>),
    StringLength(Box<Node>),
    Regex(Box<Node>, String, Regex),
    Today,
}

impl Node {
    fn children(&self) -> Vec<&Node> {
        match self {
            Node::Num(_) | Node::Str(_) | Node::Ref(_) | Node::Current | Node::Today => vec![],
            Node::Neg(a)
            | Node::Not(a)
            | Node::CountSelected(a)
            | Node::StringLength(a)
            | Node::Regex(a, _, _) => vec![a],
            Node::Bin(_, a, b) | Node::Selected(a, b) => vec![a, b],
        }
    }

    fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a Node)) {
        f(self);
        for c in self.children() {
            c.visit(f);
        }
    }

    fn depth(&self) -> usize {
        1 + self.children().iter().map(|c| c.depth()).max().unwrap_or(0)
    }

    fn eval(&self, env: &dyn Env) -> Value {
        match self {
            Node::Num(n) => Value::Num(*n),
            Node::Str(s) => Value::Str(s.clone()),
            Node::Ref(name) => env.lookup(name),
            Node::Current => env.current(),
            Node::Today => Value::Date(env.today()),
            Node::Neg(a) => Value::Num(-a.eval(env).number()),
            Node::Not(a) => Value::Bool(!a.eval(env).truthy()),
            Node::Bin(BinOp::Or, a, b) => Value::Bool(a.eval(env).truthy() || b.eval(env).truthy()),
            Node::Bin(BinOp::And, a, b) => {
                Value::Bool(a.eval(env).truthy() && b.eval(env).truthy())
            }
            Node::Bin(op, a, b) => {
                let (x, y) = (a.eval(env), b.eval(env));
                match op {
                    BinOp::Add => Value::Num(x.number() + y.number()),
                    BinOp::Sub => Value::Num(x.number() - y.number()),
                    BinOp::Mul => Value::Num(x.number() * y.number()),
                    BinOp::Div => Value::Num(x.number() / y.number()),
                    // Rust's `%` truncates like XPath's `mod` and gives NaN for a zero divisor.
                    BinOp::Mod => Value::Num(x.number() % y.number()),
                    _ => Value::Bool(compare(*op, &x, &y)),
                }
            }
            Node::Selected(list, item) => {
                let list = list.eval(env).string();
                let item = item.eval(env).string();
                let item = item.trim();
                Value::Bool(list.split_whitespace().any(|c| c == item))
            }
            Node::CountSelected(a) => {
                Value::Num(a.eval(env).string().split_whitespace().count() as f64)
            }
            Node::StringLength(a) => Value::Num(a.eval(env).string().chars().count() as f64),
            Node::Regex(a, _, re) => Value::Bool(re.is_match(&a.eval(env).string())),
        }
    }
}

fn compare(op: BinOp, x: &Value, y: &Value) -> bool {
    let numeric = |a: f64, b: f64| match op {
        BinOp::Eq => a == b,
        BinOp::Ne => a != b,
        BinOp::Lt => a < b,
        BinOp::Le => a <= b,
        BinOp::Gt => a > b,
        BinOp::Ge => a >= b,
        _ => false,
    };
    let is = |pred: fn(&Value) -> bool| pred(x) || pred(y);
    if is(|v| matches!(v, Value::Bool(_))) {
        return match op {
            BinOp::Eq => x.truthy() == y.truthy(),
            BinOp::Ne => x.truthy() != y.truthy(),
            _ => numeric(x.number(), y.number()),
        };
    }
    // Number conversion already reads dates and date-looking text as days.
    if is(|v| matches!(v, Value::Date(_) | Value::Num(_))) {
        return numeric(x.number(), y.number());
    }
    if let (Some(a), Some(b)) = (x.days(), y.days()) {
        return numeric(a, b);
    }
    let (a, b) = (x.string(), y.string());
    match op {
        BinOp::Eq => a == b,
        BinOp::Ne => a != b,
        BinOp::Lt => a < b,
        BinOp::Le => a <= b,
        BinOp::Gt => a > b,
        BinOp::Ge => a >= b,
        _ => false,
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Num(n) => write!(f, "{}", format_number(*n)),
            Node::Str(s) => write!(f, "{s:?}"),
            Node::Ref(name) => write!(f, "${{{name}}}"),
            Node::Current => f.write_str("."),
            Node::Today => f.write_str("today()"),
            Node::Neg(a) => write!(f, "(-{a})"),
            Node::Not(a) => write!(f, "not({a})"),
            Node::Bin(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
            Node::Selected(a, b) => write!(f, "selected({a}, {b})"),
            Node::CountSelected(a) => write!(f, "count-selected({a})"),
            Node::StringLength(a) => write!(f, "string-length({a})"),
            Node::Regex(a, p, _) => write!(f, "regex({a}, {p:?})"),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// XML-name-like: a letter or `_`, then letters, digits, `_`, `-` or `.`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self, expected: &'static str) -> Result<Token, ExprError> {
        let tok = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or(ExprError::UnexpectedEnd { expected })?;
        self.pos += 1;
        Ok(tok)
    }

    fn eat_op(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        let found = match self.peek().map(|t| &t.kind) {
            Some(TokKind::Op(o)) if ops.contains(o) => *o,
            Some(TokKind::Name(n)) if ops.contains(&n.as_str()) => {
                ops.iter().copied().find(|o| o == n)?
            }
            _ => return None,
        };
        self.pos += 1;
        Some(found)
    }

    fn expect(&mut self, kind: TokKind, expected: &'static str) -> Result<(), ExprError> {
        let tok = self.next(expected)?;
        if tok.kind == kind {
            Ok(())
        } else {
            Err(ExprError::UnexpectedToken {
                found: tok.kind.describe(),
                expected,
                column: tok.column,
            })
        }
    }

    fn nest(&mut self) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            Err(ExprError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn binary_level(
        &mut self,
        ops: &[&'static str],
        next: fn(&mut Parser) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        let mut left = next(self)?;
        while let Some(op) = self.eat_op(ops) {
            let right = next(self)?;
            let op = match op {
                "or" => BinOp::Or,
                "and" => BinOp::And,
                "=" => BinOp::Eq,
                "!=" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                ">=" => BinOp::Ge,
                "+" => BinOp::Add,
                "-" => BinOp::Sub,
                "*" => BinOp::Mul,
                "div" => BinOp::Div,
                _ => BinOp::Mod,
            };
            left = Node::Bin(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or_expr(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&["or"], Parser::and_expr)
    }

    fn and_expr(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&["and"], Parser::eq_expr)
    }

    fn eq_expr(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&["=", "!="], Parser::rel_expr)
    }

    fn rel_expr(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&["<", "<=", ">", ">="], Parser::add_expr)
    }

    fn add_expr(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&["+", "-"], Parser::mul_expr)
    }

    fn mul_expr(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&["*", "div", "mod"], Parser::unary_expr)
    }

    fn unary_expr(&mut self) -> Result<Node, ExprError> {
        if self.eat_op(&["-"]).is_some() {
            self.nest()?;
            let inner = self.unary_expr()?;
            self.nesting -= 1;
            return Ok(Node::Neg(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        const OPERAND: &str = "a value: ${name}, `.`, a number, a string, `(` or a function call";
        let tok = self.next(OPERAND)?;
        match tok.kind {
            TokKind::Num(n) => Ok(Node::Num(n)),
            TokKind::Str(s) => Ok(Node::Str(s)),
            TokKind::Ref(name) => Ok(Node::Ref(name)),
            TokKind::Dot => Ok(Node::Current),
            TokKind::LParen => {
                self.nest()?;
                let inner = self.or_expr()?;
                self.expect(TokKind::RParen, "`)`")?;
                self.nesting -= 1;
                Ok(inner)
            }
            TokKind::Name(name) => {
                if self.peek().map(|t| &t.kind) == Some(&TokKind::LParen) {
                    self.pos += 1;
                    self.nest()?;
                    let call = self.call(name)?;
                    self.nesting -= 1;
                    Ok(call)
                } else {
                    Err(ExprError::BareName {
                        name,
                        column: tok.column,
                    })
                }
            }
            other => Err(ExprError::UnexpectedToken {
                found: other.describe(),
                expected: OPERAND,
                column: tok.column,
            }),
        }
    }

    /// Parses the arguments after `name(`, up to and including `)`.
    fn call(&mut self, name: String) -> Result<Node, ExprError> {
        let (fname, expected, arity): (&'static str, &'static str, usize) = match name.as_str() {
            "not" => ("not", "1 argument", 1),
            "selected" => ("selected", "2 arguments", 2),
            "count-selected" => ("count-selected", "1 argument", 1),
            "string-length" => ("string-length", "1 argument", 1),
            "regex" => ("regex", "2 arguments", 2),
            "today" => ("today", "no arguments", 0),
            _ => return Err(ExprError::UnknownFunction { name }),
        };
        let mut args = Vec::new();
        if self.peek().map(|t| &t.kind) == Some(&TokKind::RParen) {
            self.pos += 1;
        } else {
            loop {
                args.push(self.or_expr()?);
                let tok = self.next("`,` or `)`")?;
                match tok.kind {
                    TokKind::Comma => {}
                    TokKind::RParen => break,
                    other => {
                        return Err(ExprError::UnexpectedToken {
                            found: other.describe(),
                            expected: "`,` or `)`",
                            column: tok.column,
                        });
                    }
                }
            }
        }
        if args.len() != arity {
            return Err(ExprError::WrongArity {
                name: fname,
                expected,
                got: args.len(),
            });
        }
        let mut args = args.into_iter().map(Box::new);
        let mut arg = || args.next().ok_or(ExprError::UnexpectedEnd { expected });
        Ok(match fname {
            "not" => Node::Not(arg()?),
            "selected" => Node::Selected(arg()?, arg()?),
            "count-selected" => Node::CountSelected(arg()?),
            "string-length" => Node::StringLength(arg()?),
            "today" => Node::Today,
            _ => {
                let subject = arg()?;
                let Node::Str(pattern) = *arg()? else {
                    return Err(ExprError::RegexNotLiteral);
                };
                // Compiling the pattern alone first proves it is balanced, so anchoring it
                // cannot change its meaning (`a)|(b` would otherwise escape the group).
                compile_regex(&pattern)?;
                let re = compile_regex(&format!("^(?:{pattern})$"))?;
                Node::Regex(subject, pattern, re)
            }
        })
    }
}

fn compile_regex(pattern: &str) -> Result<Regex, ExprError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(MAX_DEPTH as u32)
        .build()
        .map_err(|e| {
            ExprError::BadRegex(match e {
                // The syntax message spans lines (pattern, caret, error); the last says why.
                regex::Error::Syntax(msg) => {
                    let why = msg.lines().last().unwrap_or_default().trim();
                    why.strip_prefix("error: ").unwrap_or(why).to_owned()
                }
                regex::Error::CompiledTooBig(_) => "the pattern is too large; simplify it".into(),
                other => other.to_string(),
            })
        })
}

mod lex;
#[cfg(test)]
mod tests;
