//! A response as the tree an expression reads: the form root, its groups, repeat instances and
//! questions in form order, with the answers as leaf values; and every choice list as a
//! secondary instance (`instance('list')/root/item` with `name`, `label` and the list's other
//! columns), as ODK builds them. The choice lists are built once per survey; the response tree
//! per evaluation.

use std::collections::HashMap;
use std::sync::Arc;

use super::definition::Survey;
use super::types::QuestionType;
use super::validate::parse_datetime;
use super::xpath::convert::{node_string, parse_date, parse_time};
use super::xpath::{Instance, NodeValue};
use crate::answer::{Answer, Answers};

/// A node of the response tree or of a secondary instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Primary(u32),
    Secondary(u32),
}

/// Where an answer lives in [`Answers`]: the repeat instances above it, outermost first, as
/// (repeat name, 0-based instance index).
pub type Location = Vec<(String, usize)>;

#[derive(Debug, Clone)]
pub(crate) struct TreeNode {
    name: String,
    parent: Option<u32>,
    children: Vec<u32>,
    pub(crate) value: NodeValue,
}

/// What a primary node stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    Root,
    Group(String),
    /// One instance of a repeat.
    Instance {
        repeat: String,
        index: usize,
    },
    Question(usize),
}

/// The choice lists of a survey as secondary instances.
#[derive(Debug, Default)]
pub(crate) struct Secondary {
    nodes: Vec<TreeNode>,
    /// Instance id → its document node.
    documents: HashMap<String, u32>,
}

fn push_node(nodes: &mut Vec<TreeNode>, name: &str, parent: Option<u32>, value: NodeValue) -> u32 {
    let id = u32::try_from(nodes.len()).unwrap_or(u32::MAX);
    nodes.push(TreeNode {
        name: name.to_owned(),
        parent,
        children: Vec::new(),
        value,
    });
    if let Some(p) = parent
        && let Some(pn) = nodes.get_mut(p as usize)
    {
        pn.children.push(id);
    }
    id
}

impl Secondary {
    pub(crate) fn build(survey: &Survey) -> Secondary {
        let mut s = Secondary::default();
        let n = &mut s.nodes;
        for (list, choices) in &survey.choices {
            let doc = push_node(n, "", None, NodeValue::Empty);
            let root = push_node(n, "root", Some(doc), NodeValue::Empty);
            for c in choices {
                let item = push_node(n, "item", Some(root), NodeValue::Empty);
                push_node(n, "name", Some(item), NodeValue::Text(c.name.clone()));
                let label = c.label.text().to_owned();
                push_node(n, "label", Some(item), NodeValue::Text(label));
                for (k, v) in &c.columns {
                    push_node(n, k, Some(item), NodeValue::Text(v.clone()));
                }
            }
            s.documents.insert(list.clone(), doc);
        }
        for (id, rows) in &survey.files.instances {
            let doc = push_node(n, "", None, NodeValue::Empty);
            let root = push_node(n, "root", Some(doc), NodeValue::Empty);
            for row in rows {
                let item = push_node(n, "item", Some(root), NodeValue::Empty);
                for (k, v) in row {
                    push_node(n, k, Some(item), NodeValue::Text(v.clone()));
                }
            }
            s.documents.insert(id.clone(), doc);
        }
        s
    }
}

/// One item of a container (the form, a group, a repeat) in form order.
#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    Question(usize),
    Group(&'a str),
}

/// One response as an expression sees it.
pub(crate) struct ResponseTree<'a> {
    survey: &'a Survey,
    secondary: Arc<Secondary>,
    pub(crate) nodes: Vec<TreeNode>,
    pub(crate) roles: Vec<Role>,
    /// Where each node's answers live.
    pub(crate) locations: Vec<Location>,
    /// Question or group name → its nodes, in document order.
    by_name: HashMap<String, Vec<u32>>,
    language: Option<String>,
}

/// How an answer reads in an expression: numbers as numbers, a valid date, time or dateTime
/// as one, everything else as text.
pub(crate) fn node_value(qtype: &QuestionType, answer: Option<&Answer>) -> NodeValue {
    match answer {
        None | Some(Answer::Repeat(_)) => NodeValue::Empty,
        Some(Answer::Integer(i)) => NodeValue::Number(*i as f64),
        Some(Answer::Decimal(d)) => NodeValue::Number(*d),
        Some(Answer::Text(s)) if s.trim().is_empty() => NodeValue::Empty,
        Some(Answer::Text(s)) => {
            let t = s.trim();
            let typed = match qtype {
                QuestionType::Date => parse_date(t).map(NodeValue::Date),
                QuestionType::DateTime => parse_datetime(t).map(NodeValue::DateTime),
                QuestionType::Time => parse_time(t).map(|(tm, off)| NodeValue::Time(tm, off)),
                QuestionType::Integer | QuestionType::Decimal | QuestionType::Range => {
                    t.parse::<f64>().ok().map(NodeValue::Number)
                }
                _ => None,
            };
            typed.unwrap_or_else(|| NodeValue::Text(s.clone()))
        }
    }
}

/// The answers of the repeat instance at `loc` (the response's own answers for `[]`).
pub fn answers_at<'x>(answers: &'x Answers, loc: &[(String, usize)]) -> Option<&'x Answers> {
    let mut cur = answers;
    for (repeat, index) in loc {
        cur = &cur.get(repeat)?.as_repeat()?.get(*index)?.answers;
    }
    Some(cur)
}

/// Like [`answers_at`], for writing.
pub fn answers_at_mut<'x>(
    answers: &'x mut Answers,
    loc: &[(String, usize)],
) -> Option<&'x mut Answers> {
    let mut cur = answers;
    for (repeat, index) in loc {
        match cur.get_mut(repeat)? {
            Answer::Repeat(instances) => cur = &mut instances.get_mut(*index)?.answers,
            _ => return None,
        }
    }
    Some(cur)
}

/// How a location reads in messages: `members[2]/` (1-based), empty at the top.
pub(crate) fn location_prefix(loc: &[(String, usize)]) -> String {
    loc.iter()
        .map(|(r, i)| format!("{r}[{}]/", i + 1))
        .collect()
}

impl<'a> ResponseTree<'a> {
    /// The tree of `answers`, in `language` for `jr:choice-name`.
    pub(crate) fn new(survey: &'a Survey, answers: &Answers, language: Option<&str>) -> Self {
        let mut t = ResponseTree {
            survey,
            secondary: survey.secondary(),
            nodes: Vec::new(),
            roles: Vec::new(),
            locations: Vec::new(),
            by_name: HashMap::new(),
            language: language.map(str::to_owned),
        };
        let doc = t.push("", None, NodeValue::Empty, Role::Root, Vec::new());
        let root_name = survey
            .definition
            .settings
            .get("name")
            .unwrap_or("data")
            .to_owned();
        let root = t.push(
            &root_name,
            Some(doc),
            NodeValue::Empty,
            Role::Root,
            Vec::new(),
        );
        let items = container_items(survey);
        t.fill(&items, None, root, answers, &Vec::new());
        t
    }

    fn push(
        &mut self,
        name: &str,
        parent: Option<u32>,
        value: NodeValue,
        role: Role,
        loc: Location,
    ) -> u32 {
        let id = push_node(&mut self.nodes, name, parent, value);
        if !name.is_empty() && !matches!(role, Role::Root) {
            self.by_name.entry(name.to_owned()).or_default().push(id);
        }
        self.roles.push(role);
        self.locations.push(loc);
        id
    }

    fn fill(
        &mut self,
        items: &HashMap<Option<&'a str>, Vec<Item<'a>>>,
        container: Option<&'a str>,
        parent: u32,
        answers: &Answers,
        loc: &Location,
    ) {
        let survey = self.survey;
        for item in items.get(&container).map(Vec::as_slice).unwrap_or_default() {
            match *item {
                Item::Question(i) => {
                    let q = &survey.questions[i];
                    let value = node_value(&q.qtype, answers.get(&q.name));
                    self.push(&q.name, Some(parent), value, Role::Question(i), loc.clone());
                }
                Item::Group(g) => {
                    let Some(group) = survey.group(g) else {
                        continue;
                    };
                    if !group.repeat {
                        let node = self.push(
                            g,
                            Some(parent),
                            NodeValue::Empty,
                            Role::Group(g.to_owned()),
                            loc.clone(),
                        );
                        self.fill(items, Some(g), node, answers, loc);
                        continue;
                    }
                    let instances = answers
                        .get(g)
                        .and_then(Answer::as_repeat)
                        .unwrap_or_default();
                    for (index, inst) in instances.iter().enumerate() {
                        let mut inner = loc.clone();
                        inner.push((g.to_owned(), index));
                        let role = Role::Instance {
                            repeat: g.to_owned(),
                            index,
                        };
                        let node =
                            self.push(g, Some(parent), NodeValue::Empty, role, inner.clone());
                        self.fill(items, Some(g), node, &inst.answers, &inner);
                    }
                }
            }
        }
    }

    /// The children of primary node `i`.
    pub(crate) fn nodes_children(&self, i: usize) -> &[u32] {
        self.nodes.get(i).map_or(&[], |n| n.children.as_slice())
    }

    pub(crate) fn set(&mut self, node: Node, value: NodeValue) {
        if let Node::Primary(i) = node
            && let Some(n) = self.nodes.get_mut(i as usize)
        {
            n.value = value;
        }
    }

    fn node(&self, n: Node) -> Option<&TreeNode> {
        match n {
            Node::Primary(i) => self.nodes.get(i as usize),
            Node::Secondary(i) => self.secondary.nodes.get(i as usize),
        }
    }

    /// The repeat-instance nodes above `n` (itself included), innermost first.
    fn instance_chain(&self, n: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = Some(n);
        while let Some(i) = cur {
            if matches!(self.roles.get(i as usize), Some(Role::Instance { .. })) {
                out.push(i);
            }
            cur = self.nodes.get(i as usize).and_then(|t| t.parent);
        }
        out
    }
}

/// The items of every container in form order: `None` is the form itself.
fn container_items(survey: &Survey) -> HashMap<Option<&str>, Vec<Item<'_>>> {
    let mut rows: HashMap<Option<&str>, Vec<(usize, Item<'_>)>> = HashMap::new();
    for g in survey.groups() {
        let parent = g.parents.last().map(String::as_str);
        rows.entry(parent)
            .or_default()
            .push((g.row, Item::Group(&g.name)));
    }
    for (i, q) in survey.questions.iter().enumerate() {
        let parent = q.group.last().map(String::as_str);
        rows.entry(parent)
            .or_default()
            .push((q.row, Item::Question(i)));
    }
    rows.into_iter()
        .map(|(k, mut v)| {
            // Stable: an `or_other` question shares its select's row and follows it.
            v.sort_by_key(|(row, _)| *row);
            (k, v.into_iter().map(|(_, item)| item).collect())
        })
        .collect()
}

impl Instance for ResponseTree<'_> {
    type Node = Node;

    fn document(&self) -> Node {
        Node::Primary(0)
    }

    fn parent(&self, n: Node) -> Option<Node> {
        let p = self.node(n)?.parent?;
        Some(match n {
            Node::Primary(_) => Node::Primary(p),
            Node::Secondary(_) => Node::Secondary(p),
        })
    }

    fn children(&self, n: Node) -> Vec<Node> {
        let Some(node) = self.node(n) else {
            return Vec::new();
        };
        match n {
            Node::Primary(_) => node.children.iter().map(|c| Node::Primary(*c)).collect(),
            Node::Secondary(_) => node.children.iter().map(|c| Node::Secondary(*c)).collect(),
        }
    }

    fn name(&self, n: Node) -> String {
        self.node(n).map(|t| t.name.clone()).unwrap_or_default()
    }

    fn value(&self, n: Node) -> NodeValue {
        let Some(node) = self.node(n) else {
            return NodeValue::Empty;
        };
        if node.children.is_empty() {
            return node.value.clone();
        }
        // A group's string value is its descendants' text, concatenated.
        let mut text = String::new();
        for c in self.children(n) {
            match self.value(c) {
                NodeValue::Empty => {}
                NodeValue::Text(s) => text.push_str(&s),
                other => text.push_str(&node_string(&other)),
            }
        }
        if text.is_empty() {
            NodeValue::Empty
        } else {
            NodeValue::Text(text)
        }
    }

    /// pyxform's rule: inside a repeat instance that also holds the context, only that
    /// instance's node; across repeat instances the context is not in, every one.
    fn resolve(&self, name: &str, context: Node) -> Vec<Node> {
        let Some(candidates) = self.by_name.get(name) else {
            return Vec::new();
        };
        let context_chain = match context {
            Node::Primary(c) => self.instance_chain(c),
            Node::Secondary(_) => Vec::new(),
        };
        let repeat_of = |i: &u32| match self.roles.get(*i as usize) {
            Some(Role::Instance { repeat, .. }) => Some(repeat.as_str()),
            _ => None,
        };
        candidates
            .iter()
            .filter(|&&n| {
                self.instance_chain(n).iter().all(|inst| {
                    let r = repeat_of(inst);
                    let shared = context_chain.iter().find(|c| repeat_of(c) == r);
                    shared.is_none_or(|c| c == inst)
                })
            })
            .map(|n| Node::Primary(*n))
            .collect()
    }

    fn secondary(&self, id: &str) -> Option<Node> {
        self.secondary
            .documents
            .get(id)
            .map(|d| Node::Secondary(*d))
    }

    fn choice_label(&self, question: &str, value: &str, _context: Node) -> Option<String> {
        let name = question
            .trim()
            .trim_start_matches("${")
            .trim_end_matches('}')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let q = self.survey.question(name)?;
        let list = q.qtype.list()?;
        let c = self
            .survey
            .choices(list)?
            .iter()
            .find(|c| c.name == value)?;
        Some(
            c.label
                .get(self.language.as_deref())
                .unwrap_or(&c.name)
                .to_owned(),
        )
    }
}
