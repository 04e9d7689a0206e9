//! The ODK XPath 1.0 expression engine: every `relevant`, `constraint`, `calculation`,
//! `choice_filter`, `required`, `repeat_count`, `default` and label-piping cell of an XLSForm is
//! parsed here once, when a survey is loaded, so that a typo reaches the coordinator who wrote it
//! and not an enumerator in the field, and is then evaluated against a response tree.
//!
//! The engine knows nothing about the survey model: a caller implements [`Instance`] over its
//! response tree (groups, repeat instances, secondary instances) and gets [`Value`]s back.
//!
//! # Syntax
//!
//! XPath 1.0 as the ODK XForms spec (sections "XPath Paths", "XPath Operators", "XPath
//! Predicates", "XPath Axes" and "XPath Functions") restricts and extends it, plus XLSForm's
//! `${name}` and `${last-saved#name}` references. Excel's smart quotes are read as plain
//! quotes, as pyxform does. Paths: `/data/a`, `a/b`, `.`, `..`, `//`, `*`, `@attr` (last step
//! only), predicates, `instance('id')/root/item[...]`, `current()`, unions `|` and filters
//! `(expr)[pred]`. Axis syntax (`child::`) and `$variables` are not supported. Every function of
//! the spec's table is supported except `jr:itext()` and `randomize()`; anything else is a
//! parse error that names the function.
//!
//! # Limits
//!
//! Input is at most [`MAX_LEN`] bytes and nests at most [`MAX_DEPTH`] levels (the parse tree
//! depth, so also the evaluator's recursion). Evaluation has a budget of [`MAX_WORK`] units (one
//! per expression node evaluated, node visited and 16 bytes of string built) and node-sets hold
//! at most [`MAX_NODES`] nodes, so `//*//*//*` or nested predicates over big secondary
//! instances fail with [`EvalError::TooMuchWork`] instead of hanging. Regular expressions that
//! are not literals are compiled at evaluation time under the same size limit as literal ones.
//!
//! # Values and conversions
//!
//! As XPath 1.0 (`string()`, `number()`, `boolean()`), with ODK's extension of `number()`: a
//! date (`YYYY-MM-DD`) converts to days since 1970-01-01, a dateTime to fractional days since
//! 1970-01-01T00:00Z, and (our addition) a time to the fraction of the day it falls on, so
//! `today() - ${dob}` is an age in days and two times compare as times. Date functions return
//! ODK-formatted strings (there is no date value type, as in the spec's table). Numbers print
//! without exponent and without `.0`; `NaN`, `Infinity` and `-Infinity` as in XPath.
//!
//! The device's time zone is the offset of [`EvalContext::now`]: `today()` is `now`'s date in
//! that offset, and dateTimes are shown and formatted in it.
//!
//! # Randomness
//!
//! `random()` and `uuid()` draw from a SplitMix64 generator seeded with
//! [`EvalContext::random_seed`]: the same seed gives the same values, in order of evaluation,
//! so tests are reproducible. A caller that wants real randomness passes a random seed.

use std::fmt;

pub(crate) mod convert;
mod digest;
mod eval;
mod functions;
mod geo;
mod lex;
mod parse;
mod repeats;
mod table;

#[cfg(test)]
pub(crate) mod tests;

pub use table::Func;

/// Longest accepted expression, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest accepted parse tree (parentheses, calls, predicates and operator chains).
pub const MAX_DEPTH: usize = 64;
/// Evaluation work budget: expression nodes evaluated + nodes visited + string bytes / 16.
pub const MAX_WORK: u64 = 2_000_000;
/// Largest node-set any step, union or filter may produce.
pub const MAX_NODES: usize = 100_000;
/// Size limit handed to the regex compiler (compiled program and lazy DFA), in bytes.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A parsed ODK XPath expression together with its source text.
#[derive(Debug, Clone)]
pub struct XPath {
    source: String,
    root: parse::Expr,
    references: Vec<Reference>,
    functions: Vec<&'static str>,
    instances: Vec<String>,
    uses_context: bool,
}

/// A `${name}` (or `${last-saved#name}`) reference in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The question name between the braces (without `last-saved#`).
    pub name: String,
    /// 1-based column (in characters) of the `$`.
    pub column: usize,
    /// Whether it is `${last-saved#name}`.
    pub last_saved: bool,
}

impl XPath {
    /// Parses `text`, after reading Excel's smart quotes (U+2018/U+2019, U+201C/U+201D) as
    /// plain quotes as pyxform does. Unknown functions, wrong argument counts, bad syntax,
    /// literal regular expressions or date formats that cannot work, input longer than
    /// [`MAX_LEN`] bytes or nested deeper than [`MAX_DEPTH`] are errors with a column: an
    /// expression we cannot evaluate never parses.
    pub fn parse(text: &str) -> Result<XPath, XPathError> {
        if text.len() > MAX_LEN {
            return Err(XPathError::new(1, XPathErrorKind::TooLong));
        }
        let normalised: String = text
            .chars()
            .map(|c| match c {
                '\u{2018}' | '\u{2019}' => '\'',
                '\u{201C}' | '\u{201D}' => '"',
                c => c,
            })
            .collect();
        let lexed = lex::lex(&normalised)?;
        let parsed = parse::parse(lexed.tokens)?;
        Ok(XPath {
            source: normalised,
            root: parsed.root,
            references: lexed.references,
            functions: parsed.functions,
            instances: parsed.instances,
            uses_context: parsed.uses_context,
        })
    }

    /// The text the expression was parsed from (smart quotes already replaced).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every `${name}` reference in order of appearance, including those written inside
    /// string literals (pyxform substitutes them there too, e.g. `jr:choice-name(${q}, '${q}')`).
    pub fn references(&self) -> Vec<Reference> {
        self.references.clone()
    }

    /// The functions called, by their name as written (e.g. `jr:choice-name`), each once, in
    /// order of first appearance.
    pub fn functions(&self) -> Vec<&str> {
        self.functions.clone()
    }

    /// Whether the expression depends on its context node: `.`, `..`, relative paths and
    /// `position()` outside predicates, `current()` anywhere, `once()`, and `string-length()` /
    /// `normalize-space()` without arguments. A constraint that does not is suspicious.
    pub fn uses_context(&self) -> bool {
        self.uses_context
    }

    /// The secondary instance ids the expression reads, through `instance('id')` or
    /// `pulldata('id', …)`, each once.
    pub fn instances(&self) -> Vec<&str> {
        self.instances.iter().map(String::as_str).collect()
    }

    /// Evaluates the expression with `ctx.context` as its context node.
    pub fn evaluate<I: Instance>(
        &self,
        inst: &I,
        ctx: &EvalContext<I::Node>,
    ) -> Result<Value<I::Node>, EvalError> {
        let mut ev = eval::Evaluator::new(inst, ctx);
        let v = ev.top(&self.root)?;
        Ok(ev.publish(v))
    }

    /// Evaluates and converts with XPath's `boolean()`.
    pub fn evaluate_bool<I: Instance>(
        &self,
        inst: &I,
        ctx: &EvalContext<I::Node>,
    ) -> Result<bool, EvalError> {
        Ok(self.evaluate(inst, ctx)?.to_bool())
    }

    /// Evaluates and converts with XPath's `string()` (a node-set gives its first node's value).
    pub fn evaluate_string<I: Instance>(
        &self,
        inst: &I,
        ctx: &EvalContext<I::Node>,
    ) -> Result<String, EvalError> {
        Ok(self.evaluate(inst, ctx)?.to_string_value(inst))
    }

    /// Evaluates and converts with ODK's `number()` (dates count days since 1970-01-01).
    pub fn evaluate_number<I: Instance>(
        &self,
        inst: &I,
        ctx: &EvalContext<I::Node>,
    ) -> Result<f64, EvalError> {
        Ok(self.evaluate(inst, ctx)?.to_number(inst))
    }
}

impl fmt::Display for XPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The data an expression reads: the response tree and the secondary instances. Callers
/// implement only this trait; the engine does the rest.
pub trait Instance {
    /// A node handle. `Ord` must be document order within one tree (any consistent order
    /// between trees).
    type Node: Copy + Eq + Ord + std::hash::Hash + fmt::Debug;

    /// The primary document node; its one element child is the form root (`/data`).
    fn document(&self) -> Self::Node;
    /// The parent of `n` (the document node for a root element), or `None` for a document.
    fn parent(&self, n: Self::Node) -> Option<Self::Node>;
    /// The element children of `n` in document order.
    fn children(&self, n: Self::Node) -> Vec<Self::Node>;
    /// The element's local name (empty for a document node).
    fn name(&self, n: Self::Node) -> String;
    /// The value of a leaf element, typed where the caller knows the question type. A group
    /// or repeat element may return [`NodeValue::Empty`].
    fn value(&self, n: Self::Node) -> NodeValue;
    /// The value of attribute `name` of element `n`, if present.
    fn attribute(&self, n: Self::Node, name: &str) -> Option<String> {
        let _ = (n, name);
        None
    }
    /// `${name}` seen from `context`, by pyxform's rule: a question inside the same repeat
    /// instance as the context (or one of its ancestor repeat instances) resolves to that
    /// instance's node; otherwise to every node of that name, across repeat instances.
    fn resolve(&self, name: &str, context: Self::Node) -> Vec<Self::Node>;
    /// `${last-saved#name}`: the answer in the last response saved on this device, if any.
    fn last_saved(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }
    /// `instance('id')`: the document node of a secondary instance, whose element child is
    /// `root`, whose children are `item`s with child elements such as `name` and `label`.
    fn secondary(&self, id: &str) -> Option<Self::Node>;
    /// `jr:choice-name(value, '${question}')`: the label of choice `value` of select question
    /// `question`, in the active language.
    fn choice_label(&self, question: &str, value: &str, context: Self::Node) -> Option<String>;
}

/// The value of a leaf node. [`NodeValue::Text`] is always right; the typed variants save the
/// engine parsing text and make `number()` exact.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// Any answer as ODK would store it.
    Text(String),
    /// An integer or decimal answer.
    Number(f64),
    /// A date answer.
    Date(time::Date),
    /// A dateTime answer (with its offset).
    DateTime(time::OffsetDateTime),
    /// A time answer, with its offset if it was recorded with one.
    Time(time::Time, Option<time::UtcOffset>),
    /// Unanswered, or an element with children.
    Empty,
}

/// What an evaluation needs besides the instance.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<N> {
    /// The node that `.`, relative paths and `current()` start from: the question whose cell
    /// is evaluated.
    pub context: N,
    /// The current instant; its offset is the device's time zone.
    pub now: time::OffsetDateTime,
    /// Seed of `random()` and `uuid()`: equal seeds give equal values.
    pub random_seed: u64,
}

/// The result of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<N> {
    String(String),
    Number(f64),
    Boolean(bool),
    /// Nodes in document order, without duplicates.
    Nodes(Vec<N>),
}

impl<N: Copy> Value<N> {
    /// XPath `boolean()`: a non-empty string or node-set, a number other than 0 and NaN.
    pub fn to_bool(&self) -> bool {
        match self {
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::Boolean(b) => *b,
            Value::Nodes(ns) => !ns.is_empty(),
        }
    }

    /// XPath `string()`; a node-set gives its first node's value, an empty one `""`.
    pub fn to_string_value<I: Instance<Node = N>>(&self, inst: &I) -> String {
        match self {
            Value::String(s) => s.clone(),
            Value::Number(n) => convert::format_number(*n),
            Value::Boolean(b) => b.to_string(),
            Value::Nodes(ns) => ns
                .first()
                .map(|n| convert::node_string(&inst.value(*n)))
                .unwrap_or_default(),
        }
    }

    /// ODK `number()`: XPath number syntax, dates and dateTimes as days since 1970-01-01.
    pub fn to_number<I: Instance<Node = N>>(&self, inst: &I) -> f64 {
        match self {
            Value::String(s) => convert::parse_number(s),
            Value::Number(n) => *n,
            Value::Boolean(b) => f64::from(u8::from(*b)),
            Value::Nodes(ns) => ns
                .first()
                .map_or(f64::NAN, |n| convert::node_number(&inst.value(*n))),
        }
    }
}

/// A syntax error, with the 1-based column (in characters) where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {kind}")]
pub struct XPathError {
    pub column: usize,
    pub kind: XPathErrorKind,
}

impl XPathError {
    pub(crate) fn new(column: usize, kind: XPathErrorKind) -> XPathError {
        XPathError { column, kind }
    }
}

/// What is wrong with an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XPathErrorKind {
    #[error("expression is longer than {MAX_LEN} bytes; simplify it or split it into calculations")]
    TooLong,
    #[error(
        "expression is nested more than {MAX_DEPTH} levels deep; simplify it or split it into calculations"
    )]
    TooDeep,
    #[error("expression is empty; leave the cell empty instead")]
    Empty,
    #[error("unexpected `{0}`; remove it or quote it as a string")]
    UnexpectedChar(String),
    #[error("the string is not closed; add the closing {0}")]
    UnclosedString(char),
    #[error("bad question reference; write `${{name}}` with a valid question name")]
    BadReference,
    #[error("variables like `${0}` are not supported; refer to a question as `${{{0}}}`")]
    Variable(String),
    #[error(
        "axis `{0}::` is not supported; use child paths, `.` and `..` (the ODK spec allows only those axes)"
    )]
    Axis(String),
    #[error("unexpected {found}; expected {expected}")]
    Unexpected {
        found: String,
        expected: &'static str,
    },
    #[error("the expression ends too early; expected {0}")]
    UnexpectedEnd(&'static str),
    #[error("unknown function `{name}()`; {hint}")]
    UnknownFunction { name: String, hint: String },
    #[error("`{name}()` takes {expected}, not {got}")]
    Arity {
        name: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{0}")]
    BadArgument(String),
    #[error(
        "bad pattern in `regex()`: {0}; regex() uses Rust regex syntax and matches the whole value"
    )]
    BadRegex(String),
    #[error(
        "an attribute (`@{0}`) has no children or predicates; make it the last step of the path"
    )]
    AttributeNotLast(String),
}

/// An error while evaluating a well-formed expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error(
        "the expression does too much work (more than {MAX_WORK} steps or {MAX_NODES} nodes); narrow its paths or predicates"
    )]
    TooMuchWork,
    #[error(
        "there is no secondary instance `{0}`; attach the file or choice list it names, or fix the id"
    )]
    NoSuchInstance(String),
    #[error("`{function}()`: {message}")]
    Function {
        function: &'static str,
        message: String,
    },
    #[error("{0}")]
    Type(String),
}
