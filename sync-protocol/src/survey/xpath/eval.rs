//! Evaluation of the parse tree: location paths and predicates, operators with XPath 1.0's
//! comparison rules (section 3.4: node-sets compare existentially), conversions, and the
//! work budget that bounds every evaluation.

use super::convert::{format_number, node_number, node_string, parse_number};
use super::parse::{Axis, BinOp, Expr, Start, Step, Test};
use super::{EvalContext, EvalError, Instance, MAX_NODES, MAX_WORK, Value};

/// A value during evaluation. Attribute steps yield [`Val::Attrs`], a node-set of attribute
/// values, since attributes are not [`Instance::Node`]s.
#[derive(Debug, Clone)]
pub(super) enum Val<N> {
    Str(String),
    Num(f64),
    Bool(bool),
    Nodes(Vec<N>),
    Attrs(Vec<String>),
}

/// The context of a (sub)expression: its node, and within a predicate its position and size.
/// At the top level `pos` is 0, meaning "the node's position among same-named siblings".
#[derive(Debug, Clone, Copy)]
pub(super) struct Focus<N> {
    pub(super) node: N,
    pub(super) pos: usize,
    pub(super) size: usize,
}

pub(super) struct Evaluator<'a, I: Instance> {
    pub(super) inst: &'a I,
    pub(super) ctx: &'a EvalContext<I::Node>,
    work: u64,
    pub(super) rng: u64,
}

pub(super) type R<T> = Result<T, EvalError>;

impl<'a, I: Instance> Evaluator<'a, I> {
    pub(super) fn new(inst: &'a I, ctx: &'a EvalContext<I::Node>) -> Self {
        Evaluator {
            inst,
            ctx,
            work: 0,
            rng: ctx.random_seed,
        }
    }

    /// Spends `units` of the work budget.
    pub(super) fn charge(&mut self, units: u64) -> R<()> {
        self.work = self.work.saturating_add(units);
        if self.work > MAX_WORK {
            Err(EvalError::TooMuchWork)
        } else {
            Ok(())
        }
    }

    /// Charges for a string about to be returned (one unit per 16 bytes).
    pub(super) fn charge_str(&mut self, s: &str) -> R<()> {
        self.charge(s.len() as u64 / 16)
    }

    pub(super) fn top(&mut self, e: &Expr) -> R<Val<I::Node>> {
        let focus = Focus {
            node: self.ctx.context,
            pos: 0,
            size: 0,
        };
        self.eval(e, focus)
    }

    pub(super) fn publish(&self, v: Val<I::Node>) -> Value<I::Node> {
        match v {
            Val::Str(s) => Value::String(s),
            Val::Num(n) => Value::Number(n),
            Val::Bool(b) => Value::Boolean(b),
            Val::Nodes(ns) => Value::Nodes(ns),
            Val::Attrs(a) => Value::String(a.into_iter().next().unwrap_or_default()),
        }
    }

    pub(super) fn eval(&mut self, e: &Expr, f: Focus<I::Node>) -> R<Val<I::Node>> {
        self.charge(1)?;
        Ok(match e {
            Expr::Num(n) => Val::Num(*n),
            Expr::Str(s) => {
                self.charge_str(s)?;
                Val::Str(s.clone())
            }
            Expr::Ref {
                name,
                last_saved: true,
            } => Val::Str(self.inst.last_saved(name).unwrap_or_default()),
            Expr::Ref { name, .. } => {
                let mut ns = self.inst.resolve(name, self.ctx.context);
                self.charge(ns.len() as u64)?;
                normalise(&mut ns)?;
                Val::Nodes(ns)
            }
            Expr::Path { start, steps } => {
                let nodes = match start {
                    Start::Root => vec![self.inst.document()],
                    Start::Context => vec![f.node],
                    Start::Expr(base) => self.nodes(base, f, "a path step")?,
                };
                self.steps(nodes, steps)?
            }
            Expr::Filter { base, predicates } => {
                let mut ns = self.nodes(base, f, "a predicate `[…]`")?;
                for p in predicates {
                    ns = self.filter(ns, p)?;
                }
                Val::Nodes(ns)
            }
            Expr::Neg(a) => Val::Num(-self.number_of(a, f)?),
            Expr::Bin(BinOp::Or, a, b) => {
                let v = self.bool_of(a, f)? || self.bool_of(b, f)?;
                Val::Bool(v)
            }
            Expr::Bin(BinOp::And, a, b) => {
                let v = self.bool_of(a, f)? && self.bool_of(b, f)?;
                Val::Bool(v)
            }
            Expr::Bin(op, a, b) => {
                let x = self.eval(a, f)?;
                let y = self.eval(b, f)?;
                match op {
                    BinOp::Add => Val::Num(self.number(&x) + self.number(&y)),
                    BinOp::Sub => Val::Num(self.number(&x) - self.number(&y)),
                    BinOp::Mul => Val::Num(self.number(&x) * self.number(&y)),
                    BinOp::Div => Val::Num(self.number(&x) / self.number(&y)),
                    // Rust's `%` truncates like XPath's `mod` and gives NaN for a zero divisor.
                    BinOp::Mod => Val::Num(self.number(&x) % self.number(&y)),
                    _ => Val::Bool(self.compare(*op, &x, &y)?),
                }
            }
            Expr::Union(a, b) => {
                let x = self.eval(a, f)?;
                let y = self.eval(b, f)?;
                match (x, y) {
                    (Val::Nodes(mut x), Val::Nodes(y)) => {
                        x.extend(y);
                        normalise(&mut x)?;
                        Val::Nodes(x)
                    }
                    (Val::Attrs(mut x), Val::Attrs(y)) => {
                        x.extend(y);
                        Val::Attrs(x)
                    }
                    _ => {
                        return Err(EvalError::Type(
                            "`|` joins node-sets (paths or ${name}s), not values".to_owned(),
                        ));
                    }
                }
            }
            Expr::Call(call) => self.call(call, f)?,
        })
    }

    /// Evaluates `e`, which must give a node-set, for `what`.
    pub(super) fn nodes(&mut self, e: &Expr, f: Focus<I::Node>, what: &str) -> R<Vec<I::Node>> {
        match self.eval(e, f)? {
            Val::Nodes(ns) => Ok(ns),
            other => Err(EvalError::Type(format!(
                "{what} needs a node-set such as ${{name}}, a path or instance('id'), not {}",
                describe(&other)
            ))),
        }
    }

    fn steps(&mut self, mut nodes: Vec<I::Node>, steps: &[Step]) -> R<Val<I::Node>> {
        for step in steps {
            if step.axis == Axis::Attribute {
                let Test::Name(name) = &step.test else {
                    return Ok(Val::Attrs(Vec::new()));
                };
                let attrs = nodes
                    .iter()
                    .filter_map(|n| self.inst.attribute(*n, name))
                    .collect();
                return Ok(Val::Attrs(attrs));
            }
            let mut out = Vec::new();
            for &n in &nodes {
                let mut candidates = self.axis(n, step)?;
                for p in &step.predicates {
                    candidates = self.filter(candidates, p)?;
                }
                out.extend(candidates);
                if out.len() > MAX_NODES {
                    return Err(EvalError::TooMuchWork);
                }
            }
            if nodes.len() > 1 || step.axis == Axis::DescendantOrSelf {
                normalise(&mut out)?;
            }
            nodes = out;
        }
        Ok(Val::Nodes(nodes))
    }

    fn matches(&self, n: I::Node, test: &Test) -> bool {
        match test {
            Test::Any => true,
            Test::Name(name) => self.inst.name(n) == *name,
        }
    }

    /// The nodes `step`'s axis and test select from `n`, in document order.
    fn axis(&mut self, n: I::Node, step: &Step) -> R<Vec<I::Node>> {
        let out = match step.axis {
            Axis::SelfNode => vec![n],
            Axis::Parent => self.inst.parent(n).into_iter().collect(),
            Axis::Child => {
                let children = self.inst.children(n);
                self.charge(children.len() as u64)?;
                children
                    .into_iter()
                    .filter(|c| self.matches(*c, &step.test))
                    .collect()
            }
            Axis::DescendantOrSelf => {
                let mut out = Vec::new();
                let mut stack = vec![n];
                while let Some(x) = stack.pop() {
                    self.charge(1)?;
                    out.push(x);
                    if out.len() > MAX_NODES {
                        return Err(EvalError::TooMuchWork);
                    }
                    let mut kids = self.inst.children(x);
                    kids.reverse();
                    stack.extend(kids);
                }
                out
            }
            Axis::Attribute => Vec::new(),
        };
        Ok(out)
    }

    /// Keeps the nodes for which predicate `p` holds: a number means "at this position".
    fn filter(&mut self, nodes: Vec<I::Node>, p: &Expr) -> R<Vec<I::Node>> {
        let size = nodes.len();
        let mut out = Vec::new();
        for (i, n) in nodes.into_iter().enumerate() {
            let focus = Focus {
                node: n,
                pos: i + 1,
                size,
            };
            let keep = match self.eval(p, focus)? {
                Val::Num(k) => k == (i + 1) as f64,
                other => self.boolean(&other),
            };
            if keep {
                out.push(n);
            }
        }
        Ok(out)
    }

    pub(super) fn node_str(&self, n: I::Node) -> String {
        node_string(&self.inst.value(n))
    }

    pub(super) fn node_num(&self, n: I::Node) -> f64 {
        node_number(&self.inst.value(n))
    }

    /// XPath `string()`.
    pub(super) fn string(&self, v: &Val<I::Node>) -> String {
        match v {
            Val::Str(s) => s.clone(),
            Val::Num(n) => format_number(*n),
            Val::Bool(b) => b.to_string(),
            Val::Nodes(ns) => ns.first().map(|n| self.node_str(*n)).unwrap_or_default(),
            Val::Attrs(a) => a.first().cloned().unwrap_or_default(),
        }
    }

    /// ODK `number()`.
    pub(super) fn number(&self, v: &Val<I::Node>) -> f64 {
        match v {
            Val::Str(s) => parse_number(s),
            Val::Num(n) => *n,
            Val::Bool(b) => f64::from(u8::from(*b)),
            Val::Nodes(ns) => ns.first().map_or(f64::NAN, |n| self.node_num(*n)),
            Val::Attrs(a) => a.first().map_or(f64::NAN, |s| parse_number(s)),
        }
    }

    /// XPath `boolean()`.
    pub(super) fn boolean(&self, v: &Val<I::Node>) -> bool {
        match v {
            Val::Str(s) => !s.is_empty(),
            Val::Num(n) => *n != 0.0 && !n.is_nan(),
            Val::Bool(b) => *b,
            Val::Nodes(ns) => !ns.is_empty(),
            Val::Attrs(a) => !a.is_empty(),
        }
    }

    pub(super) fn number_of(&mut self, e: &Expr, f: Focus<I::Node>) -> R<f64> {
        let v = self.eval(e, f)?;
        Ok(self.number(&v))
    }

    pub(super) fn bool_of(&mut self, e: &Expr, f: Focus<I::Node>) -> R<bool> {
        let v = self.eval(e, f)?;
        Ok(self.boolean(&v))
    }

    /// The string-values of a node-set (or attribute set), or `None` for another value.
    pub(super) fn strings(&mut self, v: &Val<I::Node>) -> R<Option<Vec<String>>> {
        Ok(match v {
            Val::Nodes(ns) => {
                self.charge(ns.len() as u64)?;
                Some(ns.iter().map(|n| self.node_str(*n)).collect())
            }
            Val::Attrs(a) => Some(a.clone()),
            _ => None,
        })
    }

    /// XPath 1.0 section 3.4, with ODK's `number()` for the ordering operators.
    fn compare(&mut self, op: BinOp, x: &Val<I::Node>, y: &Val<I::Node>) -> R<bool> {
        let set = |v: &Val<I::Node>| matches!(v, Val::Nodes(_) | Val::Attrs(_));
        match (set(x), set(y)) {
            (true, true) => {
                let xs = self.strings(x)?.unwrap_or_default();
                let ys = self.strings(y)?.unwrap_or_default();
                self.charge((xs.len() as u64).saturating_mul(ys.len() as u64))?;
                Ok(xs
                    .iter()
                    .any(|a| ys.iter().any(|b| strings_compare(op, a, b))))
            }
            (true, false) => self.compare_set(op, x, y, false),
            (false, true) => self.compare_set(op, y, x, true),
            (false, false) => Ok(atomic_compare::<I::Node>(op, x, y)),
        }
    }

    /// A node-set against a value: true if some member compares true (`flipped` when the set
    /// was on the right).
    fn compare_set(
        &mut self,
        op: BinOp,
        set: &Val<I::Node>,
        other: &Val<I::Node>,
        flipped: bool,
    ) -> R<bool> {
        if let Val::Bool(b) = other {
            let s = Val::Bool(self.boolean(set));
            let o = Val::Bool(*b);
            return Ok(if flipped {
                atomic_compare::<I::Node>(op, &o, &s)
            } else {
                atomic_compare::<I::Node>(op, &s, &o)
            });
        }
        let members: Vec<Val<I::Node>> = match set {
            Val::Nodes(ns) => {
                self.charge(ns.len() as u64)?;
                ns.iter()
                    .map(|n| match other {
                        Val::Num(_) => Val::Num(self.node_num(*n)),
                        _ => Val::Str(self.node_str(*n)),
                    })
                    .collect()
            }
            Val::Attrs(a) => a.iter().map(|s| Val::Str(s.clone())).collect(),
            _ => Vec::new(),
        };
        Ok(members.iter().any(|m| {
            if flipped {
                atomic_compare(op, other, m)
            } else {
                atomic_compare(op, m, other)
            }
        }))
    }
}

/// Compares two strings as XPath compares two nodes' string-values.
fn strings_compare(op: BinOp, a: &str, b: &str) -> bool {
    match op {
        BinOp::Eq => a == b,
        BinOp::Ne => a != b,
        BinOp::Lt => parse_number(a) < parse_number(b),
        BinOp::Le => parse_number(a) <= parse_number(b),
        BinOp::Gt => parse_number(a) > parse_number(b),
        BinOp::Ge => parse_number(a) >= parse_number(b),
        _ => false,
    }
}

/// Compares two values that are not node-sets: `=` and `!=` as booleans if either is one, else
/// as numbers if either is one, else as strings; the ordering operators always as numbers.
fn atomic_compare<N>(op: BinOp, x: &Val<N>, y: &Val<N>) -> bool {
    fn num<N>(v: &Val<N>) -> f64 {
        match v {
            Val::Str(s) => parse_number(s),
            Val::Num(n) => *n,
            Val::Bool(b) => f64::from(u8::from(*b)),
            Val::Nodes(_) | Val::Attrs(_) => f64::NAN,
        }
    }
    fn truth<N>(v: &Val<N>) -> bool {
        match v {
            Val::Str(s) => !s.is_empty(),
            Val::Num(n) => *n != 0.0 && !n.is_nan(),
            Val::Bool(b) => *b,
            Val::Nodes(ns) => !ns.is_empty(),
            Val::Attrs(a) => !a.is_empty(),
        }
    }
    let either = |p: fn(&Val<N>) -> bool| p(x) || p(y);
    match op {
        BinOp::Eq | BinOp::Ne => {
            let equal = if either(|v| matches!(v, Val::Bool(_))) {
                truth(x) == truth(y)
            } else if either(|v| matches!(v, Val::Num(_))) {
                num(x) == num(y)
            } else {
                match (x, y) {
                    (Val::Str(a), Val::Str(b)) => a == b,
                    _ => false,
                }
            };
            // So NaN = NaN is false and NaN != NaN true, as in IEEE 754 and XPath.
            if op == BinOp::Eq { equal } else { !equal }
        }
        BinOp::Lt => num(x) < num(y),
        BinOp::Le => num(x) <= num(y),
        BinOp::Gt => num(x) > num(y),
        BinOp::Ge => num(x) >= num(y),
        _ => false,
    }
}

/// Sorts a node-set into document order without duplicates, within [`MAX_NODES`].
pub(super) fn normalise<N: Ord>(ns: &mut Vec<N>) -> R<()> {
    if ns.len() > MAX_NODES {
        return Err(EvalError::TooMuchWork);
    }
    ns.sort_unstable();
    ns.dedup();
    Ok(())
}

pub(super) fn describe<N>(v: &Val<N>) -> String {
    match v {
        Val::Str(s) => format!("the string {s:?}"),
        Val::Num(n) => format!("the number {}", format_number(*n)),
        Val::Bool(b) => format!("the boolean {b}"),
        Val::Nodes(_) => "a node-set".to_owned(),
        Val::Attrs(_) => "a set of attributes".to_owned(),
    }
}
