//! Survey definitions (XLSForm, as a workbook's sheets or the native JSON), their ODK XPath
//! expressions and answer validation.
//!
//! A coordinator writes a form; [`Survey::parse_json`], [`Survey::from_definition`] or
//! [`xlsform::definition_from_sheets`] then [`Survey::from_definition`] check all of it at
//! once (every problem with its sheet, row and column) and yield a [`Survey`], which validates
//! [`Answers`](crate::Answers) on the device and on the server alike. Expressions are ODK
//! XPath ([`xpath`]), evaluated over the response as a tree ([`instance`]).

mod complete;
mod definition;
pub mod files;
mod instance;
pub mod interview;
mod json;
mod sample;
pub mod sheet;
pub mod types;
mod validate;
pub mod xlsform;
pub mod xpath;

pub use complete::DeviceValues;
pub use definition::{
    Choice, DefaultValue, DefinitionError, DefinitionErrors, FormSettings, Group, Question,
    Requirement, Sheet, Survey, SurveyDefinition, Text,
};
pub use instance::{Location, answers_at, answers_at_mut};
pub use sample::SampleRng;
pub use sheet::Row;
pub use types::{ChoiceSource, MediaKind, MetaKind, QuestionType, RowType, Select};
pub use validate::{At, ValidationContext, ValidationError, ValidationErrorKind};
pub use xpath::{XPath, XPathError};
