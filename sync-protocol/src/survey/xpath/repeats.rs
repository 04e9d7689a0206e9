//! The repeat-aware helpers: `indexed-repeat()`, and positions among same-named siblings
//! (what `position()` means for a repeat instance outside a predicate).

use super::eval::{Evaluator, Focus, R, Val, normalise};
use super::functions::trunc_i64;
use super::parse::Expr;
use super::table::Func;
use super::{EvalError, Instance};

fn err<T>(message: String) -> R<T> {
    Err(EvalError::Function {
        function: Func::IndexedRepeat.name(),
        message,
    })
}

impl<I: Instance> Evaluator<'_, I> {
    /// 1-based position of `n` among its parent's children of the same name, and their count.
    pub(super) fn sibling_position(&self, n: I::Node) -> (usize, usize) {
        let Some(parent) = self.inst.parent(n) else {
            return (1, 1);
        };
        let name = self.inst.name(n);
        let same: Vec<I::Node> = self
            .inst
            .children(parent)
            .into_iter()
            .filter(|c| self.inst.name(*c) == name)
            .collect();
        let pos = same.iter().position(|c| *c == n).map_or(1, |i| i + 1);
        (pos, same.len())
    }

    /// `indexed-repeat(field, repeat1, i1, …)`: the field's node inside the `i1`-th instance
    /// of `repeat1`, inside its `i2`-th instance of `repeat2`, …. References are read as
    /// absolute paths, as pyxform writes them for this function.
    pub(super) fn indexed_repeat(&mut self, a: &[Expr], f: Focus<I::Node>) -> R<Val<I::Node>> {
        let target = self.absolute(&a[0], f)?;
        let mut chosen: Option<I::Node> = None;
        for (k, pair) in a[1..].chunks(2).enumerate() {
            let [repeat, index] = pair else { break };
            let repeats = self.absolute(repeat, f)?;
            if let (Some(t), Some(r)) = (target.first(), repeats.first()) {
                let (tp, rp) = (self.name_path(*t)?, self.name_path(*r)?);
                if rp.len() >= tp.len() || tp[..rp.len()] != rp[..] {
                    return err(format!(
                        "argument {} must be a repeat that contains the field in argument 1",
                        2 * k + 2
                    ));
                }
            }
            // JavaRosa reads an index below 1 (e.g. not yet answered) as 1.
            let i = trunc_i64(self.number_of(index, f)?).max(1);
            let mut inside = Vec::new();
            for r in repeats {
                if chosen.is_none_or(|c| self.is_descendant(r, c).unwrap_or(false)) {
                    inside.push(r);
                }
            }
            let pick = usize::try_from(i - 1)
                .ok()
                .and_then(|i| inside.get(i).copied());
            let Some(pick) = pick else {
                return Ok(Val::Nodes(Vec::new()));
            };
            chosen = Some(pick);
        }
        let mut out = Vec::new();
        for t in target {
            if chosen.is_none_or(|c| self.is_descendant(t, c).unwrap_or(false)) {
                out.push(t);
            }
        }
        Ok(Val::Nodes(out))
    }

    /// A `${name}`'s or path's nodes, a reference widened to every node at the same path.
    fn absolute(&mut self, e: &Expr, f: Focus<I::Node>) -> R<Vec<I::Node>> {
        let ns = self.nodes(e, f, "`indexed-repeat()`")?;
        if !matches!(e, Expr::Ref { .. }) {
            return Ok(ns);
        }
        let mut out = Vec::new();
        for n in ns.into_iter().take(1) {
            let (doc, path) = self.root_and_path(n)?;
            let mut level = vec![doc];
            for name in path {
                let mut next = Vec::new();
                for x in level {
                    let kids = self.inst.children(x);
                    self.charge(kids.len() as u64)?;
                    next.extend(kids.into_iter().filter(|c| self.inst.name(*c) == name));
                }
                level = next;
            }
            out.extend(level);
        }
        normalise(&mut out)?;
        Ok(out)
    }

    fn root_and_path(&mut self, n: I::Node) -> R<(I::Node, Vec<String>)> {
        let mut path = Vec::new();
        let mut at = n;
        while let Some(p) = self.inst.parent(at) {
            self.charge(1)?;
            path.push(self.inst.name(at));
            at = p;
        }
        path.reverse();
        Ok((at, path))
    }

    fn name_path(&mut self, n: I::Node) -> R<Vec<String>> {
        Ok(self.root_and_path(n)?.1)
    }

    fn is_descendant(&mut self, n: I::Node, ancestor: I::Node) -> R<bool> {
        let mut at = n;
        while let Some(p) = self.inst.parent(at) {
            self.charge(1)?;
            if p == ancestor {
                return Ok(true);
            }
            at = p;
        }
        Ok(false)
    }
}
