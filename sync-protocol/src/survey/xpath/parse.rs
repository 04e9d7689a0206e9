//! The parse tree and a recursive-descent parser for XPath 1.0's grammar (section 3), with the
//! ODK function table: names and argument counts are checked here, literal regex patterns,
//! date formats and digest algorithms are checked here, so that evaluation cannot meet them.

use regex::Regex;

use super::lex::{Tok, Token};
use super::table::{Func, unknown_function_hint};
use super::{MAX_DEPTH, XPathError, XPathErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Axis {
    Child,
    SelfNode,
    Parent,
    DescendantOrSelf,
    Attribute,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Test {
    /// Any element (or any node, on the self, parent and descendant-or-self axes).
    Any,
    /// An element (or attribute) with this local name; a prefix is ignored.
    Name(String),
}

#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) axis: Axis,
    pub(super) test: Test,
    pub(super) predicates: Vec<Expr>,
}

#[derive(Debug, Clone)]
pub(super) enum Start {
    /// `/…`: the primary document node.
    Root,
    /// A relative path: the context node.
    Context,
    /// A filter expression such as `instance('id')`, `current()`, `${name}` or `(…)[…]`.
    Expr(Box<Expr>),
}

#[derive(Debug, Clone)]
pub(super) enum Expr {
    Num(f64),
    Str(String),
    Ref {
        name: String,
        last_saved: bool,
    },
    Path {
        start: Start,
        steps: Vec<Step>,
    },
    Filter {
        base: Box<Expr>,
        predicates: Vec<Expr>,
    },
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Union(Box<Expr>, Box<Expr>),
    Call(Call),
}

#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) func: Func,
    pub(super) args: Vec<Expr>,
    /// `regex()` with a literal pattern: compiled (anchored) at parse time.
    pub(super) regex: Option<Regex>,
}

impl Expr {
    fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Num(_) | Expr::Str(_) | Expr::Ref { .. } => vec![],
            Expr::Path { start, steps } => {
                let mut out: Vec<&Expr> = match start {
                    Start::Expr(e) => vec![e],
                    Start::Root | Start::Context => vec![],
                };
                out.extend(steps.iter().flat_map(|s| s.predicates.iter()));
                out
            }
            Expr::Filter { base, predicates } => {
                let mut out = vec![&**base];
                out.extend(predicates.iter());
                out
            }
            Expr::Neg(a) => vec![a],
            Expr::Bin(_, a, b) | Expr::Union(a, b) => vec![a, b],
            Expr::Call(c) => c.args.iter().collect(),
        }
    }

    pub(super) fn depth(&self) -> usize {
        1 + self.children().iter().map(|c| c.depth()).max().unwrap_or(0)
    }
}

pub(super) struct Parsed {
    pub(super) root: Expr,
    pub(super) functions: Vec<&'static str>,
    pub(super) instances: Vec<String>,
    pub(super) uses_context: bool,
}

pub(super) fn parse(tokens: Vec<Token>) -> Result<Parsed, XPathError> {
    if tokens.is_empty() {
        return Err(XPathError::new(1, XPathErrorKind::Empty));
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        nesting: 0,
        in_predicate: 0,
        functions: Vec::new(),
        instances: Vec::new(),
        uses_context: false,
    };
    let root = p.expr()?;
    if let Some(t) = p.tokens.get(p.pos) {
        return Err(XPathError::new(
            t.column,
            XPathErrorKind::Unexpected {
                found: t.tok.describe(),
                expected: "an operator or the end of the expression",
            },
        ));
    }
    if root.depth() > MAX_DEPTH {
        return Err(XPathError::new(1, XPathErrorKind::TooDeep));
    }
    Ok(Parsed {
        root,
        functions: p.functions,
        instances: p.instances,
        uses_context: p.uses_context,
    })
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
    in_predicate: usize,
    functions: Vec<&'static str>,
    instances: Vec<String>,
    uses_context: bool,
}

const OPERAND: &str = "a value: a number, a 'string', ${name}, a path, `(` or a function call";

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + k).map(|t| &t.tok)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(1, |t| t.column)
    }

    fn next(&mut self, expected: &'static str) -> Result<Token, XPathError> {
        let Some(t) = self.tokens.get(self.pos).cloned() else {
            return Err(XPathError::new(
                self.column(),
                XPathErrorKind::UnexpectedEnd(expected),
            ));
        };
        self.pos += 1;
        Ok(t)
    }

    fn unexpected(t: &Token, expected: &'static str) -> XPathError {
        XPathError::new(
            t.column,
            XPathErrorKind::Unexpected {
                found: t.tok.describe(),
                expected,
            },
        )
    }

    fn expect(&mut self, tok: &Tok, expected: &'static str) -> Result<(), XPathError> {
        let t = self.next(expected)?;
        if &t.tok == tok {
            Ok(())
        } else {
            Err(Self::unexpected(&t, expected))
        }
    }

    fn nest<T>(
        &mut self,
        f: impl FnOnce(&mut Parser) -> Result<T, XPathError>,
    ) -> Result<T, XPathError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(XPathError::new(self.column(), XPathErrorKind::TooDeep));
        }
        let out = f(self);
        self.nesting -= 1;
        out
    }

    fn expr(&mut self) -> Result<Expr, XPathError> {
        self.nest(Parser::or_expr)
    }

    fn binary(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Parser) -> Result<Expr, XPathError>,
    ) -> Result<Expr, XPathError> {
        let mut left = next(self)?;
        while let Some(Tok::Op(o)) = self.peek() {
            let Some(&(_, op)) = ops.iter().find(|(s, _)| s == o) else {
                break;
            };
            self.pos += 1;
            let right = next(self)?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or_expr(&mut self) -> Result<Expr, XPathError> {
        self.binary(&[("or", BinOp::Or)], Parser::and_expr)
    }

    fn and_expr(&mut self) -> Result<Expr, XPathError> {
        self.binary(&[("and", BinOp::And)], Parser::eq_expr)
    }

    fn eq_expr(&mut self) -> Result<Expr, XPathError> {
        self.binary(&[("=", BinOp::Eq), ("!=", BinOp::Ne)], Parser::rel_expr)
    }

    fn rel_expr(&mut self) -> Result<Expr, XPathError> {
        let ops = [
            ("<", BinOp::Lt),
            ("<=", BinOp::Le),
            (">", BinOp::Gt),
            (">=", BinOp::Ge),
        ];
        self.binary(&ops, Parser::add_expr)
    }

    fn add_expr(&mut self) -> Result<Expr, XPathError> {
        self.binary(&[("+", BinOp::Add), ("-", BinOp::Sub)], Parser::mul_expr)
    }

    fn mul_expr(&mut self) -> Result<Expr, XPathError> {
        let ops = [("*", BinOp::Mul), ("div", BinOp::Div), ("mod", BinOp::Mod)];
        self.binary(&ops, Parser::unary_expr)
    }

    fn unary_expr(&mut self) -> Result<Expr, XPathError> {
        if self.peek() == Some(&Tok::Op("-")) {
            self.pos += 1;
            let inner = self.nest(Parser::unary_expr)?;
            return Ok(Expr::Neg(Box::new(inner)));
        }
        self.union_expr()
    }

    fn union_expr(&mut self) -> Result<Expr, XPathError> {
        let mut left = self.path_expr()?;
        while self.peek() == Some(&Tok::Pipe) {
            self.pos += 1;
            let right = self.path_expr()?;
            left = Expr::Union(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn starts_step(&self) -> bool {
        match self.peek() {
            Some(Tok::Name(_)) => self.peek_at(1) != Some(&Tok::LParen),
            Some(Tok::Star | Tok::Dot | Tok::DotDot | Tok::At) => true,
            _ => false,
        }
    }

    fn path_expr(&mut self) -> Result<Expr, XPathError> {
        match self.peek() {
            Some(Tok::Slash) => {
                self.pos += 1;
                let steps = if self.starts_step() {
                    self.relative_steps(Vec::new())?
                } else {
                    Vec::new()
                };
                Ok(Expr::Path {
                    start: Start::Root,
                    steps,
                })
            }
            Some(Tok::SlashSlash) => {
                self.pos += 1;
                let steps = self.relative_steps(vec![descendant_or_self()])?;
                Ok(Expr::Path {
                    start: Start::Root,
                    steps,
                })
            }
            _ if self.starts_step() => {
                if self.in_predicate == 0 {
                    self.uses_context = true;
                }
                let steps = self.relative_steps(Vec::new())?;
                Ok(Expr::Path {
                    start: Start::Context,
                    steps,
                })
            }
            _ => {
                let filter = self.filter_expr()?;
                let steps = match self.peek() {
                    Some(Tok::Slash) => {
                        self.pos += 1;
                        self.relative_steps(Vec::new())?
                    }
                    Some(Tok::SlashSlash) => {
                        self.pos += 1;
                        self.relative_steps(vec![descendant_or_self()])?
                    }
                    _ => return Ok(filter),
                };
                Ok(Expr::Path {
                    start: Start::Expr(Box::new(filter)),
                    steps,
                })
            }
        }
    }

    /// `Step (('/' | '//') Step)*`, appended to `steps`.
    fn relative_steps(&mut self, mut steps: Vec<Step>) -> Result<Vec<Step>, XPathError> {
        loop {
            let column = self.column();
            let step = self.step()?;
            if let Some(Step {
                axis: Axis::Attribute,
                test: Test::Name(n),
                ..
            }) = steps.last()
            {
                return Err(XPathError::new(
                    column,
                    XPathErrorKind::AttributeNotLast(n.clone()),
                ));
            }
            steps.push(step);
            match self.peek() {
                Some(Tok::Slash) => self.pos += 1,
                Some(Tok::SlashSlash) => {
                    self.pos += 1;
                    steps.push(descendant_or_self());
                }
                _ => return Ok(steps),
            }
        }
    }

    fn step(&mut self) -> Result<Step, XPathError> {
        const STEP: &str = "a step: a name, `*`, `.`, `..` or `@name`";
        let t = self.next(STEP)?;
        let (axis, test) = match t.tok {
            Tok::Dot => (Axis::SelfNode, Test::Any),
            Tok::DotDot => (Axis::Parent, Test::Any),
            Tok::Star => (Axis::Child, Test::Any),
            Tok::Name(ref n) if self.peek() != Some(&Tok::LParen) => {
                (Axis::Child, Test::Name(local_name(n)))
            }
            Tok::At => {
                let t = self.next("an attribute name after `@`")?;
                match t.tok {
                    Tok::Name(n) => (Axis::Attribute, Test::Name(local_name(&n))),
                    _ => return Err(Self::unexpected(&t, "an attribute name after `@`")),
                }
            }
            _ => return Err(Self::unexpected(&t, STEP)),
        };
        let predicates = self.predicates()?;
        if let (Axis::Attribute, Test::Name(n), false) = (axis, &test, predicates.is_empty()) {
            return Err(XPathError::new(
                t.column,
                XPathErrorKind::AttributeNotLast(n.clone()),
            ));
        }
        if matches!(axis, Axis::SelfNode | Axis::Parent) && !predicates.is_empty() {
            return Err(XPathError::new(
                t.column,
                XPathErrorKind::BadArgument(
                    "XPath allows no predicate right after `.` or `..`; put it on a named step, or write `current()[…]`".to_owned(),
                ),
            ));
        }
        Ok(Step {
            axis,
            test,
            predicates,
        })
    }

    fn predicates(&mut self) -> Result<Vec<Expr>, XPathError> {
        let mut out = Vec::new();
        while self.peek() == Some(&Tok::LBracket) {
            self.pos += 1;
            self.in_predicate += 1;
            let e = self.expr();
            self.in_predicate -= 1;
            out.push(e?);
            self.expect(&Tok::RBracket, "`]`")?;
        }
        Ok(out)
    }

    fn filter_expr(&mut self) -> Result<Expr, XPathError> {
        let base = self.primary()?;
        let is_value_ref = matches!(
            base,
            Expr::Ref {
                last_saved: true,
                ..
            }
        );
        if self.peek() != Some(&Tok::LBracket) {
            return Ok(base);
        }
        if is_value_ref {
            return Err(XPathError::new(
                self.column(),
                XPathErrorKind::BadArgument(
                    "`${last-saved#…}` is a value, not a node-set; it takes no predicates or steps"
                        .to_owned(),
                ),
            ));
        }
        let predicates = self.predicates()?;
        Ok(Expr::Filter {
            base: Box::new(base),
            predicates,
        })
    }

    fn primary(&mut self) -> Result<Expr, XPathError> {
        let t = self.next(OPERAND)?;
        match t.tok {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Ref { name, last_saved } => Ok(Expr::Ref { name, last_saved }),
            Tok::LParen => {
                let inner = self.expr()?;
                self.expect(&Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::Name(name) if self.peek() == Some(&Tok::LParen) => {
                self.pos += 1;
                self.nest(|p| p.call(&name, t.column))
            }
            _ => Err(Self::unexpected(&t, OPERAND)),
        }
    }

    /// Parses the arguments after `name(`, through `)`, and checks the call.
    fn call(&mut self, name: &str, column: usize) -> Result<Expr, XPathError> {
        let Some(func) = Func::from_name(name) else {
            return Err(XPathError::new(
                column,
                XPathErrorKind::UnknownFunction {
                    name: name.to_owned(),
                    hint: unknown_function_hint(name),
                },
            ));
        };
        if !self.functions.contains(&func.name()) {
            self.functions.push(func.name());
        }
        let mut args = Vec::new();
        let mut arg_columns = Vec::new();
        if self.peek() == Some(&Tok::RParen) {
            self.pos += 1;
        } else {
            loop {
                arg_columns.push(self.column());
                args.push(self.expr()?);
                let t = self.next("`,` or `)`")?;
                match t.tok {
                    Tok::Comma => {}
                    Tok::RParen => break,
                    _ => return Err(Self::unexpected(&t, "`,` or `)`")),
                }
            }
        }
        if !func.arity().accepts(args.len()) {
            return Err(XPathError::new(
                column,
                XPathErrorKind::Arity {
                    name: func.name(),
                    expected: func.arity().describe(),
                    got: args.len(),
                },
            ));
        }
        let bad = |i: usize, msg: String| {
            Err(XPathError::new(
                arg_columns.get(i).copied().unwrap_or(column),
                XPathErrorKind::BadArgument(msg),
            ))
        };
        let top = self.in_predicate == 0;
        let mut regex = None;
        match func {
            Func::Current | Func::Once => self.uses_context = true,
            Func::Position | Func::Last | Func::StringLength | Func::NormalizeSpace
                if top && args.is_empty() =>
            {
                self.uses_context = true;
            }
            Func::Instance | Func::Pulldata => match args.first() {
                Some(Expr::Str(id)) => {
                    if !self.instances.contains(id) {
                        self.instances.push(id.clone());
                    }
                }
                _ => {
                    return bad(
                        0,
                        format!(
                            "the instance id of `{}()` must be a quoted string such as 'choices'",
                            func.name()
                        ),
                    );
                }
            },
            Func::Regex => {
                if let Some(Expr::Str(pattern)) = args.get(1) {
                    match compile_regex(pattern) {
                        Ok(re) => regex = Some(re),
                        Err(e) => {
                            let col = arg_columns.get(1).copied().unwrap_or(column);
                            return Err(XPathError::new(col, XPathErrorKind::BadRegex(e)));
                        }
                    }
                }
            }
            Func::FormatDate | Func::FormatDateTime => {
                if let Some(Expr::Str(format)) = args.get(1)
                    && let Err(e) = super::convert::check_format(format)
                {
                    return bad(1, format!("`{}()`: {e}", func.name()));
                }
            }
            Func::Digest => {
                if let Some(Expr::Str(alg)) = args.get(1)
                    && let Err(e) = super::digest::Algorithm::from_name(alg)
                {
                    return bad(1, e);
                }
                if let Some(Expr::Str(enc)) = args.get(2)
                    && let Err(e) = super::digest::Encoding::from_name(enc)
                {
                    return bad(2, e);
                }
            }
            Func::IndexedRepeat => {
                for (i, a) in args.iter().enumerate() {
                    if i % 2 == 0 && i > 0 {
                        continue;
                    }
                    if !matches!(
                        a,
                        Expr::Ref {
                            last_saved: false,
                            ..
                        } | Expr::Path { .. }
                    ) {
                        return bad(i, "`indexed-repeat()` takes a field, then pairs of a repeat and an index; the field and repeats must be ${name}s or paths".to_owned());
                    }
                }
            }
            _ => {}
        }
        Ok(Expr::Call(Call { func, args, regex }))
    }
}

fn descendant_or_self() -> Step {
    Step {
        axis: Axis::DescendantOrSelf,
        test: Test::Any,
        predicates: Vec::new(),
    }
}

fn local_name(qname: &str) -> String {
    qname.rsplit(':').next().unwrap_or(qname).to_owned()
}

/// Compiles a `regex()` pattern to match a whole value, as ODK Collect does
/// (`Pattern.matches`), under [`REGEX_SIZE_LIMIT`](super::REGEX_SIZE_LIMIT).
pub(super) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    // Compiling the pattern alone first proves it is balanced, so anchoring it cannot change
    // its meaning (`a)|(b` would otherwise escape the group).
    build_regex(pattern)?;
    build_regex(&format!("^(?:{pattern})$"))
}

fn build_regex(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(super::REGEX_SIZE_LIMIT)
        .dfa_size_limit(super::REGEX_SIZE_LIMIT)
        .nest_limit(MAX_DEPTH as u32)
        .build()
        .map_err(|e| match e {
            // The syntax message spans lines (pattern, caret, error); the last says why.
            regex::Error::Syntax(msg) => {
                let why = msg.lines().last().unwrap_or_default().trim();
                why.strip_prefix("error: ").unwrap_or(why).to_owned()
            }
            regex::Error::CompiledTooBig(_) => "the pattern is too large; simplify it".into(),
            other => other.to_string(),
        })
}
