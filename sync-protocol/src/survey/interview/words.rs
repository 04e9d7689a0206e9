//! Reading what was typed at a choice, and the words that say what a question expects.

use crate::survey::{Choice, QuestionType, ValidationError};

/// Whether a typed line is an interview command (`:save`, `:skip`, …) rather than an answer.
pub fn is_command(line: &str) -> bool {
    line.strip_prefix(':')
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphabetic()))
}

/// Whether choices are picked by their number in the menu: only when no choice name is a
/// number.
pub fn menu_numbers(choices: &[&Choice]) -> bool {
    !choices.iter().any(|c| c.name.trim().parse::<f64>().is_ok())
}

/// A typed choice: its name, its number in the list, or its label (any case, any language).
pub(super) fn resolve_choice<'a>(choices: &[&'a Choice], typed: &'a str) -> &'a str {
    if choices.iter().any(|c| c.name == typed) {
        return typed;
    }
    // Menu numbers only when no choice is itself named by a number (lists coded 0/1 or
    // 88/99 are common, and there a typed number is the code).
    if menu_numbers(choices)
        && let Ok(n) = typed.parse::<usize>()
        && let Some(c) = n.checked_sub(1).and_then(|i| choices.get(i))
    {
        return &c.name;
    }
    choices
        .iter()
        .find(|c| {
            c.label
                .default
                .iter()
                .chain(c.label.translations.values())
                .any(|l| l.trim().eq_ignore_ascii_case(typed))
        })
        .map_or(typed, |c| c.name.as_str())
}

pub(super) fn join(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What kind of answer a question expects, in words.
pub fn type_hint(qtype: &QuestionType) -> &'static str {
    match qtype {
        QuestionType::Text => "text",
        QuestionType::Integer => "whole number",
        QuestionType::Decimal => "number, use . for decimals",
        QuestionType::SelectOne(_) => "choose one: its number or name",
        QuestionType::SelectMultiple(_) => {
            "choose any: numbers or names separated by spaces or commas"
        }
        QuestionType::Date => "date, YYYY-MM-DD",
        QuestionType::DateTime => "date and time, e.g. 2024-06-14T09:12:00+03:00",
        QuestionType::GeoPoint => "latitude longitude [altitude [accuracy]]",
        QuestionType::Note => "note",
        QuestionType::Range => "number in the range",
        QuestionType::Rank(_) => "every choice in your order: numbers or names",
        QuestionType::Acknowledge | QuestionType::Trigger => "type OK",
        QuestionType::Time => "time, HH:MM",
        QuestionType::GeoTrace => "points `lat lon` separated by ;",
        QuestionType::GeoShape => "at least 3 points `lat lon` separated by ;",
        QuestionType::Barcode => "the code",
        QuestionType::Media(_) => "the path of the file to attach",
        QuestionType::Calculate | QuestionType::Hidden | QuestionType::Meta(_) => "filled in",
    }
}
