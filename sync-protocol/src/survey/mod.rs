//! Survey definitions (XLSForm-shaped JSON), their expressions and answer validation.
//!
//! A coordinator writes a [`SurveyDefinition`]; [`Survey::parse_json`] or
//! [`Survey::from_definition`] checks all of it at once (every problem with its sheet, row and
//! field) and yields a [`Survey`], which validates [`Answers`](crate::Answers) on the device and
//! on the server alike. The expression subset and its evaluation rules are documented in
//! [`expr`].

mod definition;
pub mod expr;
mod json;
mod validate;

pub use definition::{
    Choice, ChoiceRow, DefinitionError, DefinitionErrors, Group, Question, QuestionType, Required,
    Settings, Sheet, Survey, SurveyDefinition, SurveyRow,
};
pub use expr::{Expr, ExprError};
pub use validate::{ValidationContext, ValidationError, ValidationErrorKind};
