//! What a device fills in itself when it saves a response: the metadata questions (`start`,
//! `end`, `today`, `deviceid`, `username`, …), defaults of questions nobody is asked, dynamic
//! defaults (`today()`, `${last-saved#x}`), and every calculation. The values are stored with
//! the response, so exports and the server see what the device computed.

use time::format_description::well_known::Rfc3339;

use super::definition::{DefaultValue, Question, Survey};
use super::instance::{ResponseTree, answers_at_mut};
use super::types::{MetaKind, QuestionType};
use super::validate::ValidationContext;
use super::xpath::{EvalContext, Instance};
use crate::answer::{Answer, Answers};

/// What the device knows about itself and its user, for the metadata questions.
#[derive(Debug, Clone, Default)]
pub struct DeviceValues {
    /// The device's id (`deviceid`).
    pub device_id: Option<String>,
    /// The enumerator's name (`username`).
    pub username: Option<String>,
    /// The enumerator's email (`email`).
    pub email: Option<String>,
    /// The device's phone number (`phonenumber`).
    pub phone_number: Option<String>,
    /// Answers of the last response saved on this device, for `${last-saved#x}`.
    pub last_saved: Answers,
}

/// `${last-saved#x}` answers over a response tree.
struct WithLastSaved<'t, 'a> {
    tree: &'t ResponseTree<'a>,
    last: &'t Answers,
}

impl Instance for WithLastSaved<'_, '_> {
    type Node = super::instance::Node;

    fn document(&self) -> Self::Node {
        self.tree.document()
    }
    fn parent(&self, n: Self::Node) -> Option<Self::Node> {
        self.tree.parent(n)
    }
    fn children(&self, n: Self::Node) -> Vec<Self::Node> {
        self.tree.children(n)
    }
    fn name(&self, n: Self::Node) -> String {
        self.tree.name(n)
    }
    fn value(&self, n: Self::Node) -> super::xpath::NodeValue {
        self.tree.value(n)
    }
    fn resolve(&self, name: &str, context: Self::Node) -> Vec<Self::Node> {
        self.tree.resolve(name, context)
    }
    fn last_saved(&self, name: &str) -> Option<String> {
        self.last.get(name).map(Answer::to_text)
    }
    fn secondary(&self, id: &str) -> Option<Self::Node> {
        self.tree.secondary(id)
    }
    fn choice_label(&self, question: &str, value: &str, context: Self::Node) -> Option<String> {
        self.tree.choice_label(question, value, context)
    }
}

impl Survey {
    /// `answers` with what the device fills in: metadata (`start` and `today` only when not
    /// yet set, `end` always: this is the latest save), defaults of unanswered questions that
    /// nobody is asked and dynamic defaults of unanswered ones, then every calculation.
    /// Questions inside repeats get theirs in each instance.
    pub fn complete(
        &self,
        answers: &Answers,
        device: &DeviceValues,
        ctx: &ValidationContext,
    ) -> Answers {
        let mut out = answers.clone();
        let now = ctx.now.format(&Rfc3339).unwrap_or_default();
        for q in self.questions.iter().filter(|q| q.repeat.is_none()) {
            let value = match &q.qtype {
                QuestionType::Meta(MetaKind::Start) => {
                    (!out.contains_key(&q.name)).then(|| now.clone())
                }
                QuestionType::Meta(MetaKind::End) => Some(now.clone()),
                QuestionType::Meta(MetaKind::Today) => (!out.contains_key(&q.name))
                    .then(|| super::xpath::convert::format_date(ctx.today)),
                QuestionType::Meta(MetaKind::DeviceId) => device.device_id.clone(),
                QuestionType::Meta(MetaKind::Username) => device.username.clone(),
                QuestionType::Meta(MetaKind::Email) => device.email.clone(),
                QuestionType::Meta(MetaKind::PhoneNumber) => device.phone_number.clone(),
                _ => None,
            };
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                out.insert(q.name.clone(), Answer::Text(v));
            }
        }
        self.defaults(&mut out, device, ctx);
        self.calculate(&out, ctx)
    }

    /// `answers` as handed in: `end` stamped now, calculations brought up to date. (Defaults
    /// are not filled again: an optional question left empty stays empty.)
    pub fn submitted(&self, answers: &Answers, ctx: &ValidationContext) -> Answers {
        let mut out = answers.clone();
        let now = ctx.now.format(&Rfc3339).unwrap_or_default();
        for q in self.questions.iter().filter(|q| q.repeat.is_none()) {
            if q.qtype == QuestionType::Meta(MetaKind::End) {
                out.insert(q.name.clone(), Answer::Text(now.clone()));
            }
        }
        self.calculate(&out, ctx)
    }

    /// Static defaults of unanswered questions nobody is asked (a typed default is offered by
    /// the interview instead), and dynamic defaults of unanswered questions, in every scope.
    fn defaults(&self, out: &mut Answers, device: &DeviceValues, ctx: &ValidationContext) {
        // Only a default nobody is asked, or a dynamic one, is filled in here.
        let fills = |q: &Question| match &q.default {
            Some(DefaultValue::Value(_)) => !q.is_asked(),
            Some(DefaultValue::Dynamic(_)) => true,
            None => false,
        };
        if !self.questions.iter().any(fills) {
            return;
        }
        let tree_answers = out.clone();
        let mut tree = ResponseTree::new(self, &tree_answers, None);
        // A question the answers make irrelevant gets no default.
        let hidden = self.relevance_of(&mut tree, ctx);
        let tree = tree;
        let inst = WithLastSaved {
            tree: &tree,
            last: &device.last_saved,
        };
        for (i, role) in tree.roles.iter().enumerate() {
            let super::instance::Role::Question(qi) = role else {
                continue;
            };
            let q = &self.questions[*qi];
            if hidden.get(i).is_some_and(Option::is_some) {
                continue;
            }
            let Some(scope) = answers_at_mut(out, &tree.locations[i]) else {
                continue;
            };
            if scope.contains_key(&q.name) || !q.qtype.holds_value() {
                continue;
            }
            let value = match &q.default {
                Some(DefaultValue::Value(v)) if !q.is_asked() => Some(v.clone()),
                Some(DefaultValue::Dynamic(x)) => {
                    let eval = EvalContext {
                        context: super::instance::Node::Primary(i as u32),
                        now: ctx.now,
                        random_seed: 0,
                    };
                    x.evaluate_string(&inst, &eval).ok()
                }
                _ => None,
            };
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                let answer = self.parse_input(&q.name, &v).unwrap_or(Answer::Text(v));
                scope.insert(q.name.clone(), answer);
            }
        }
    }
}
