//! A response as the tree an expression reads: the form root, its groups and questions in form
//! order, with the answers as leaf values; and every choice list as a secondary instance
//! (`instance('list')/root/item` with `name`, `label` and the list's other columns), as ODK
//! builds them. The choice lists are built once per survey; the response tree per evaluation.

use std::collections::HashMap;
use std::sync::Arc;

use super::definition::Survey;
use super::types::QuestionType;
use super::xpath::{Instance, NodeValue};
use crate::answer::{Answer, Answers};
use crate::survey::validate::parse_datetime;
use crate::survey::xpath::convert::{node_string, parse_date, parse_time};

/// A node of the response tree or of a secondary instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Primary(u32),
    Secondary(u32),
}

#[derive(Debug, Clone)]
pub(crate) struct TreeNode {
    name: String,
    parent: Option<u32>,
    children: Vec<u32>,
    pub(crate) value: NodeValue,
}

/// The choice lists of a survey as secondary instances.
#[derive(Debug, Default)]
pub(crate) struct Secondary {
    nodes: Vec<TreeNode>,
    /// Instance id → its document node.
    documents: HashMap<String, u32>,
}

impl Secondary {
    pub(crate) fn build(survey: &Survey) -> Secondary {
        let mut s = Secondary::default();
        let push = |nodes: &mut Vec<TreeNode>, name: &str, parent: Option<u32>, value| {
            let id = nodes.len() as u32;
            nodes.push(TreeNode {
                name: name.to_owned(),
                parent,
                children: Vec::new(),
                value,
            });
            if let Some(p) = parent {
                nodes[p as usize].children.push(id);
            }
            id
        };
        for (list, choices) in &survey.choices {
            let doc = push(&mut s.nodes, "", None, NodeValue::Empty);
            let root = push(&mut s.nodes, "root", Some(doc), NodeValue::Empty);
            for c in choices {
                let item = push(&mut s.nodes, "item", Some(root), NodeValue::Empty);
                push(&mut s.nodes, "name", Some(item), NodeValue::Text(c.name.clone()));
                let label = c.label.text().to_owned();
                push(&mut s.nodes, "label", Some(item), NodeValue::Text(label));
                for (k, v) in &c.columns {
                    push(&mut s.nodes, k, Some(item), NodeValue::Text(v.clone()));
                }
            }
            s.documents.insert(list.clone(), doc);
        }
        s
    }
}

/// One response as an expression sees it.
pub(crate) struct ResponseTree<'a> {
    survey: &'a Survey,
    secondary: Arc<Secondary>,
    pub(crate) nodes: Vec<TreeNode>,
    /// Question or group name → its nodes.
    by_name: HashMap<String, Vec<u32>>,
    /// Question index → its node.
    pub(crate) question_node: Vec<Option<u32>>,
    language: Option<String>,
}

/// How an answer reads in an expression: numbers as numbers, a valid date, time or dateTime
/// as one, everything else as text.
pub(crate) fn node_value(qtype: &QuestionType, answer: Option<&Answer>) -> NodeValue {
    match answer {
        None => NodeValue::Empty,
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

impl<'a> ResponseTree<'a> {
    /// The tree of `answers`. Questions inside repeats have no instances yet.
    pub(crate) fn new(survey: &'a Survey, answers: &Answers, language: Option<&str>) -> Self {
        let mut t = ResponseTree {
            survey,
            secondary: survey.secondary(),
            nodes: Vec::new(),
            by_name: HashMap::new(),
            question_node: vec![None; survey.questions.len()],
            language: language.map(str::to_owned),
        };
        let doc = t.push("", None, NodeValue::Empty);
        let root_name = survey
            .definition
            .settings
            .get("name")
            .unwrap_or("data")
            .to_owned();
        let root = t.push(&root_name, Some(doc), NodeValue::Empty);
        let mut group_nodes: HashMap<&str, u32> = HashMap::new();
        for g in survey.groups() {
            if g.repeat || g.parents.iter().any(|p| survey.group(p).is_some_and(|pg| pg.repeat)) {
                continue;
            }
            let parent = g
                .parents
                .last()
                .and_then(|p| group_nodes.get(p.as_str()).copied())
                .unwrap_or(root);
            let id = t.push(&g.name, Some(parent), NodeValue::Empty);
            t.by_name.entry(g.name.clone()).or_default().push(id);
            group_nodes.insert(&g.name, id);
        }
        // Questions and groups interleave in form order: attach questions in order, then sort
        // each node's children by the rows they came from.
        let mut row_of: HashMap<u32, usize> = group_nodes
            .iter()
            .filter_map(|(n, id)| survey.group(n).map(|g| (*id, g.row)))
            .collect();
        for (i, q) in survey.questions.iter().enumerate() {
            if q.repeat.is_some() {
                continue;
            }
            let parent = q
                .group
                .last()
                .and_then(|p| group_nodes.get(p.as_str()).copied())
                .unwrap_or(root);
            let id = t.push(&q.name, Some(parent), node_value(&q.qtype, answers.get(&q.name)));
            row_of.insert(id, q.row);
            t.by_name.entry(q.name.clone()).or_default().push(id);
            t.question_node[i] = Some(id);
        }
        for n in &mut t.nodes {
            n.children.sort_by_key(|c| row_of.get(c).copied().unwrap_or(0));
        }
        t
    }

    fn push(&mut self, name: &str, parent: Option<u32>, value: NodeValue) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(TreeNode {
            name: name.to_owned(),
            parent,
            children: Vec::new(),
            value,
        });
        if let Some(p) = parent {
            self.nodes[p as usize].children.push(id);
        }
        id
    }

    /// The node of question `i`, or the form root when it has none (inside a repeat).
    pub(crate) fn context_of(&self, question: usize) -> Node {
        Node::Primary(self.question_node.get(question).copied().flatten().unwrap_or(1))
    }

    /// The node of group `name`, or the form root.
    pub(crate) fn group_node(&self, name: &str) -> Node {
        Node::Primary(
            self.by_name
                .get(name)
                .and_then(|v| v.first())
                .copied()
                .unwrap_or(1),
        )
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

    fn resolve(&self, name: &str, _context: Node) -> Vec<Node> {
        self.by_name
            .get(name)
            .map(|v| v.iter().map(|i| Node::Primary(*i)).collect())
            .unwrap_or_default()
    }

    fn secondary(&self, id: &str) -> Option<Node> {
        self.secondary.documents.get(id).map(|d| Node::Secondary(*d))
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
        let c = self.survey.choices(list)?.iter().find(|c| c.name == value)?;
        Some(
            c.label
                .get(self.language.as_deref())
                .unwrap_or(&c.name)
                .to_owned(),
        )
    }
}
