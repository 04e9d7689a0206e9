//! What a question shows at its place in a response: the choices its filter leaves, its text
//! with answers piped in; and the check that a counted repeat has its entries.

use super::*;

impl Survey {
    /// The choices a select question offers at `at`: its list, narrowed by its
    /// `choice_filter` for the answers so far (a filter that cannot be evaluated shows all).
    pub fn choices_at(
        &self,
        at: At<'_>,
        answers: &Answers,
        ctx: &ValidationContext,
    ) -> Vec<&crate::survey::definition::Choice> {
        let Some(q) = self.question(at.question) else {
            return Vec::new();
        };
        if let Some(crate::survey::types::ChoiceSource::External(list)) =
            q.qtype.select().map(|s| &s.source)
        {
            // An external list's filter reads its own columns against the answers: evaluated
            // per choice with the question's place as context.
            return self.external_choices_at(q, list, at, answers, ctx);
        }
        let all = self.choices_of(q).unwrap_or_default();
        let Some(filter) = &q.choice_filter else {
            return all.iter().collect();
        };
        let mut tree = ResponseTree::new(self, answers, None);
        let _ = self.walk(&mut tree, ctx, None);
        let node = self
            .node_of(&tree, at)
            .map_or(Node::Primary(1), |i| Node::Primary(i as u32));
        let Ok(crate::survey::xpath::Value::Nodes(items)) = filter.evaluate(&tree, &ctx.eval(node))
        else {
            return all.iter().collect();
        };
        let names: std::collections::HashSet<String> = items
            .iter()
            .filter_map(|item| {
                tree.children(*item)
                    .into_iter()
                    .find(|c| tree.name(*c) == "name")
                    .map(|c| crate::survey::xpath::convert::node_string(&tree.value(c)))
            })
            .collect();
        all.iter().filter(|c| names.contains(&c.name)).collect()
    }

    fn external_choices_at(
        &self,
        q: &Question,
        list: &str,
        at: At<'_>,
        answers: &Answers,
        ctx: &ValidationContext,
    ) -> Vec<&crate::survey::definition::Choice> {
        let all = self
            .external_choices
            .get(list)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let Some(filter) = &q.choice_filter else {
            return all.iter().collect();
        };
        // The filter as written: `${x}` are answers, bare names the choice's columns.
        all.iter()
            .filter(|c| {
                let mut text = filter.source().to_owned();
                for (col, value) in &c.columns {
                    text = replace_name(&text, col, &format!("'{}'", value.replace('\'', "")));
                }
                text = replace_name(&text, "name", &format!("'{}'", c.name.replace('\'', "")));
                XPath::parse(&text)
                    .ok()
                    .and_then(|x| {
                        let mut tree = ResponseTree::new(self, answers, None);
                        let _ = self.walk(&mut tree, ctx, None);
                        let node = self
                            .node_of(&tree, at)
                            .map_or(Node::Primary(1), |i| Node::Primary(i as u32));
                        x.evaluate_bool(&tree, &ctx.eval(node)).ok()
                    })
                    .unwrap_or(true)
            })
            .collect()
    }

    /// `text` (a label, hint or message) with every `${name}` replaced by that answer as seen
    /// from `at` (inside a repeat entry, the entry's own answer), as ODK shows piped labels.
    pub fn pipe(
        &self,
        text: &str,
        at: At<'_>,
        answers: &Answers,
        ctx: &ValidationContext,
    ) -> String {
        if !text.contains("${") {
            return text.to_owned();
        }
        let mut tree = ResponseTree::new(self, answers, None);
        let _ = self.walk(&mut tree, ctx, None);
        let node = self
            .node_of(&tree, at)
            .map_or(Node::Primary(1), |i| Node::Primary(i as u32));
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            let Some(end) = after.find('}') else {
                out.push_str(after);
                rest = "";
                break;
            };
            let reference = &after[..=end];
            let value = XPath::parse(reference)
                .ok()
                .and_then(|x| x.evaluate_string(&tree, &ctx.eval(node)).ok())
                .unwrap_or_default();
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Repeats with a `repeat_count` must hold that many instances where they are relevant.
    pub(super) fn repeat_counts(
        &self,
        tree: &ResponseTree<'_>,
        hidden: &Relevance,
        ctx: &ValidationContext,
        errors: &mut Vec<ValidationError>,
    ) {
        for g in self.groups().filter(|g| g.repeat) {
            let Some(count) = &g.repeat_count else {
                continue;
            };
            for (p, role) in tree.roles.iter().enumerate() {
                let holds = match (role, g.parents.last()) {
                    (Role::Root, None) => p == 1,
                    (Role::Group(n), Some(parent))
                    | (Role::Instance { repeat: n, .. }, Some(parent)) => n == parent,
                    _ => false,
                };
                if !holds || hidden[p].is_some() {
                    continue;
                }
                let Ok(want) = count.evaluate_number(tree, &ctx.eval(Node::Primary(p as u32)))
                else {
                    continue;
                };
                if !want.is_finite() || want < 0.0 {
                    continue;
                }
                let have = tree.nodes_children(p)
                    .iter()
                    .filter(|c| matches!(&tree.roles[**c as usize], Role::Instance { repeat, .. } if *repeat == g.name))
                    .count();
                let want = want.round() as usize;
                if have != want {
                    let at = format!("{}{}", location_prefix(&tree.locations[p]), g.name);
                    errors.push(ValidationError::new(
                        &at,
                        ValidationErrorKind::Constraint,
                        format!(
                            "`{}` has {have} entries but the form asks for {want} (repeat_count `{}`); make them agree: change the answer it counts by, or remove entries (`:delete` in an interview)",
                            g.name,
                            count.source()
                        ),
                    ));
                }
            }
        }
    }
}

/// `text` with the bare name `name` (not inside `${…}` or quotes, not part of a longer name)
/// replaced by `with`.
fn replace_name(text: &str, name: &str, with: &str) -> String {
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
    let mut out = String::new();
    let mut chars = text.char_indices().peekable();
    let mut quote: Option<char> = None;
    let mut in_ref = false;
    let mut prev: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if text[i..].starts_with("${") => in_ref = true,
            (None, '}') if in_ref => in_ref = false,
            (None, _) if !in_ref && text[i..].starts_with(name) && !prev.is_some_and(is_name) => {
                let after = text[i + name.len()..].chars().next();
                if !after.is_some_and(is_name) {
                    out.push_str(with);
                    for _ in 1..name.chars().count() {
                        chars.next();
                    }
                    prev = name.chars().last();
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
        prev = Some(c);
    }
    out
}
