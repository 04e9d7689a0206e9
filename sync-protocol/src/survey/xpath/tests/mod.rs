//! Table tests of the engine against [`TestInstance`], a small in-memory response tree with
//! groups, nested repeats and secondary instances, written as a compact XML-like literal.

use std::collections::{HashMap, HashSet};

use super::{EvalContext, EvalError, Instance, NodeValue, Value, XPath};

mod dates;
mod extras;
mod functions;
mod operators;
mod paths;
mod syntax;

/// A node of a [`TestInstance`]: an index into its arena, allocated in document order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TestNode(u32);

#[derive(Debug, Clone)]
struct Element {
    name: String,
    parent: Option<TestNode>,
    children: Vec<TestNode>,
    attributes: Vec<(String, String)>,
    value: NodeValue,
}

/// An in-memory [`Instance`] for tests. Build it from markup such as
/// `<data><a>1</a><hh><m><x>2</x></m></hh></data>`: elements, `attr="value"` attributes,
/// `<empty/>`, and text only in leaves. Mark repeat names with [`TestInstance::repeats`].
#[derive(Debug, Clone)]
pub(crate) struct TestInstance {
    nodes: Vec<Element>,
    document: TestNode,
    secondary: HashMap<String, TestNode>,
    repeats: HashSet<String>,
    choices: HashMap<String, Vec<(String, String)>>,
    last_saved: HashMap<String, String>,
}

impl TestInstance {
    /// A primary instance from markup. Panics on malformed markup (it is test data).
    pub(crate) fn new(markup: &str) -> TestInstance {
        let mut t = TestInstance {
            nodes: Vec::new(),
            document: TestNode(0),
            secondary: HashMap::new(),
            repeats: HashSet::new(),
            choices: HashMap::new(),
            last_saved: HashMap::new(),
        };
        t.document = t.parse_document(markup);
        t
    }

    /// Declares which element names are repeats (for `${name}` resolution).
    pub(crate) fn repeats(mut self, names: &[&str]) -> TestInstance {
        self.repeats.extend(names.iter().map(|n| (*n).to_owned()));
        self
    }

    /// Adds secondary instance `id` from markup (usually `<root><item>…</item></root>`).
    pub(crate) fn secondary(mut self, id: &str, markup: &str) -> TestInstance {
        let doc = self.parse_document(markup);
        self.secondary.insert(id.to_owned(), doc);
        self
    }

    /// Choice labels of select question `question`, for `jr:choice-name()`.
    pub(crate) fn choices(mut self, question: &str, choices: &[(&str, &str)]) -> TestInstance {
        let list = choices
            .iter()
            .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
            .collect();
        self.choices.insert(question.to_owned(), list);
        self
    }

    pub(crate) fn last_saved(mut self, name: &str, value: &str) -> TestInstance {
        self.last_saved.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Replaces the text of every primary element named `name` with `typed(text)`.
    pub(crate) fn typed(mut self, name: &str, typed: fn(&str) -> NodeValue) -> TestInstance {
        for e in &mut self.nodes {
            if e.name == name {
                if let NodeValue::Text(s) = &e.value {
                    e.value = typed(s);
                } else if e.children.is_empty() {
                    e.value = NodeValue::Empty;
                }
            }
        }
        self
    }

    /// The one node `path` selects (evaluated from the document). Panics otherwise.
    pub(crate) fn node(&self, path: &str) -> TestNode {
        let x = XPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        match x.evaluate(self, &context(self.document)) {
            Ok(Value::Nodes(ns)) if ns.len() == 1 => ns[0],
            other => panic!("{path} selects {other:?}, not one node"),
        }
    }

    fn push(&mut self, name: &str, parent: Option<TestNode>) -> TestNode {
        let id = TestNode(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        self.nodes.push(Element {
            name: name.to_owned(),
            parent,
            children: Vec::new(),
            attributes: Vec::new(),
            value: NodeValue::Empty,
        });
        if let Some(p) = parent {
            self.nodes[p.0 as usize].children.push(id);
        }
        id
    }

    fn parse_document(&mut self, markup: &str) -> TestNode {
        let doc = self.push("", None);
        let mut stack = vec![doc];
        let mut rest = markup.trim();
        while !rest.is_empty() {
            let Some(after) = rest.strip_prefix('<') else {
                let end = rest.find('<').unwrap_or(rest.len());
                let parent = *stack.last().unwrap_or(&doc);
                self.nodes[parent.0 as usize].value = NodeValue::Text(rest[..end].to_owned());
                rest = &rest[end..];
                continue;
            };
            let close = after
                .find('>')
                .unwrap_or_else(|| panic!("unclosed tag in {markup}"));
            let tag = &after[..close];
            rest = &after[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().unwrap_or(doc);
                assert_eq!(
                    self.nodes[open.0 as usize].name,
                    name.trim(),
                    "mismatched tag"
                );
            } else {
                let (body, empty) = match tag.strip_suffix('/') {
                    Some(b) => (b, true),
                    None => (tag, false),
                };
                let mut parts = body.split_whitespace();
                let name = parts.next().unwrap_or_default();
                let parent = *stack.last().unwrap_or(&doc);
                let id = self.push(name, Some(parent));
                for attr in parts {
                    let (k, v) = attr.split_once('=').unwrap_or((attr, "\"\""));
                    let v = v.trim_matches('"').to_owned();
                    self.nodes[id.0 as usize].attributes.push((k.to_owned(), v));
                }
                if !empty {
                    stack.push(id);
                }
            }
            // Whitespace between tags is layout; text directly before `<` in a leaf is kept.
            if rest.trim_start().starts_with('<') {
                rest = rest.trim_start();
            }
        }
        doc
    }

    fn el(&self, n: TestNode) -> &Element {
        &self.nodes[n.0 as usize]
    }

    fn ancestors_or_self(&self, n: TestNode) -> Vec<TestNode> {
        let mut out = vec![n];
        let mut at = n;
        while let Some(p) = self.el(at).parent {
            out.push(p);
            at = p;
        }
        out
    }
}

impl Instance for TestInstance {
    type Node = TestNode;

    fn document(&self) -> TestNode {
        self.document
    }

    fn parent(&self, n: TestNode) -> Option<TestNode> {
        self.el(n).parent
    }

    fn children(&self, n: TestNode) -> Vec<TestNode> {
        self.el(n).children.clone()
    }

    fn name(&self, n: TestNode) -> String {
        self.el(n).name.clone()
    }

    fn value(&self, n: TestNode) -> NodeValue {
        self.el(n).value.clone()
    }

    fn attribute(&self, n: TestNode, name: &str) -> Option<String> {
        let attrs = &self.el(n).attributes;
        attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// pyxform's rule: within a repeat that also holds the context, only the context's own
    /// instance; across repeats the context is not in, every instance.
    fn resolve(&self, name: &str, context: TestNode) -> Vec<TestNode> {
        let context_chain = self.ancestors_or_self(context);
        let primary = |n: TestNode| self.ancestors_or_self(n).contains(&self.document);
        (0..self.nodes.len())
            .map(|i| TestNode(u32::try_from(i).unwrap_or(u32::MAX)))
            .filter(|&n| self.el(n).name == name && primary(n))
            .filter(|&n| {
                self.ancestors_or_self(n).iter().all(|&r| {
                    let rname = &self.el(r).name;
                    !self.repeats.contains(rname)
                        || context_chain.contains(&r)
                        || !context_chain.iter().any(|c| self.el(*c).name == *rname)
                })
            })
            .collect()
    }

    fn last_saved(&self, name: &str) -> Option<String> {
        self.last_saved.get(name).cloned()
    }

    fn secondary(&self, id: &str) -> Option<TestNode> {
        self.secondary.get(id).copied()
    }

    fn choice_label(&self, question: &str, value: &str, _context: TestNode) -> Option<String> {
        let list = self.choices.get(question)?;
        list.iter()
            .find(|(v, _)| v == value)
            .map(|(_, l)| l.clone())
    }
}

/// The household survey most tests read: groups, a repeat `member` with a nested repeat
/// `visit`, typed and untyped answers, and secondary instances `countries` and `fruits`.
pub(crate) fn household() -> TestInstance {
    TestInstance::new(
        "<data>
           <name>Ana</name><age>30</age><dob>1990-05-15</dob><colors>red  blue green</colors>
           <empty/><zero>0</zero><country>ke</country><start>2024-03-15T08:00:00.000Z</start>
           <hh>
             <member><mname>Bo</mname><mage>40</mage>
               <visit><vday>1</vday></visit><visit><vday>2</vday></visit></member>
             <member><mname>Cy</mname><mage>12</mage><visit><vday>3</vday></visit></member>
             <member><mname>Di</mname><mage/></member>
           </hh>
           <meta><instanceID>uuid:1</instanceID></meta>
         </data>",
    )
    .repeats(&["member", "visit"])
    .secondary(
        "countries",
        "<root>
           <item code=\"k\"><name>ke</name><label>Kenya</label><region>east</region></item>
           <item code=\"u\"><name>ug</name><label>Uganda</label><region>east</region></item>
           <item code=\"g\"><name>gh</name><label>Ghana</label><region>west</region></item>
         </root>",
    )
    .secondary(
        "fruits",
        "<root><item><key>a</key><price>3</price></item><item><key>b</key><price>5</price></item></root>",
    )
    .choices("country", &[("ke", "Kenya"), ("ug", "Uganda")])
    .last_saved("name", "Zed")
}

/// The fixed context of the tests: 2024-03-15T10:30:00Z, seed 42.
pub(crate) fn context(node: TestNode) -> EvalContext<TestNode> {
    EvalContext {
        context: node,
        now: time::macros::datetime!(2024-03-15 10:30:00 UTC),
        random_seed: 42,
    }
}

/// A value as the tables write it: strings as is, numbers as XPath prints them, booleans as
/// `true`/`false`, node-sets as `[v1|v2]`.
pub(crate) fn show(inst: &TestInstance, v: &Value<TestNode>) -> String {
    match v {
        Value::Nodes(ns) => {
            let vals: Vec<String> = ns
                .iter()
                .map(|n| super::convert::node_string(&inst.value(*n)))
                .collect();
            format!("[{}]", vals.join("|"))
        }
        other => other.to_string_value(inst),
    }
}

pub(crate) fn eval_in(
    inst: &TestInstance,
    at: &str,
    expr: &str,
) -> Result<Value<TestNode>, EvalError> {
    let x = XPath::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    x.evaluate(inst, &context(inst.node(at)))
}

/// Checks `(expression, expected)` rows evaluated at `at` in `inst`.
pub(crate) fn check_in(inst: &TestInstance, at: &str, rows: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (expr, expected) in rows {
        let got = match eval_in(inst, at, expr) {
            Ok(v) => show(inst, &v),
            Err(e) => format!("error: {e}"),
        };
        if got != *expected {
            failures.push(format!(
                "{expr}\n    expected {expected:?}\n    got      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Checks rows against [`household`] with `/data` as the context.
pub(crate) fn check(rows: &[(&str, &str)]) {
    check_in(&household(), "/data", rows);
}

/// Checks that each expression parses but fails to evaluate with a message containing `part`.
pub(crate) fn check_eval_errors(rows: &[(&str, &str)]) {
    let inst = household();
    for (expr, part) in rows {
        match eval_in(&inst, "/data", expr) {
            Err(e) => assert!(e.to_string().contains(part), "{expr}: {e}"),
            Ok(v) => panic!("{expr} gave {v:?}, expected an error containing {part:?}"),
        }
    }
}
