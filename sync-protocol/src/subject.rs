//! Data subjects: the people responses are about. A survey names the question that identifies
//! its respondent (`subject_field` in its settings) and may mark other questions
//! `identifying` (a household member's name in a roster). Their answers, normalised here, are
//! what a data-subject request looks a person up by; the server keeps only a keyed hash of
//! them (see the server's subject index), never the values.

use unicode_normalization::UnicodeNormalization;

use crate::answer::{Answer, Answers};
use crate::survey::Survey;

/// The form of an identifier that lookups compare: Unicode compatibility-normalised (NFKC),
/// lower-cased, with runs of whitespace as one space and none at either end. `None` for a
/// value with nothing left, which identifies nobody.
///
/// So `" Amina  BELLO "`, `"amina bello"` and `"ａｍｉｎａ bello"` (full-width letters) are one
/// person, and a search typed by a coordinator finds what an enumerator entered.
pub fn normalize(value: &str) -> Option<String> {
    let folded: String = value.nfkc().collect::<String>().to_lowercase();
    let joined = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// Every normalised identifier a response holds: the answers of the survey's identifying
/// questions (inside repeat entries too), without duplicates, in form order.
pub fn identifiers(survey: &Survey, answers: &Answers) -> Vec<String> {
    let mut found = Vec::new();
    for q in survey.identifying() {
        for a in survey.answers_of(q, answers) {
            let value = match a {
                Answer::Text(s) => normalize(s),
                Answer::Integer(_) | Answer::Decimal(_) => normalize(&a.to_text()),
                Answer::Repeat(_) => None,
            };
            if let Some(v) = value
                && !found.contains(&v)
            {
                found.push(v);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_person_however_the_name_was_typed() {
        let forms = [
            " Amina  BELLO ",
            "amina bello",
            "ＡＭＩＮＡ\tbello",
            "Amina\u{00a0}Bello",
        ];
        for f in forms {
            assert_eq!(normalize(f).as_deref(), Some("amina bello"), "{f:?}");
        }
        assert_eq!(normalize("  \t "), None);
        assert_ne!(normalize("Amina Bello"), normalize("Amina Bellow"));
    }

    #[test]
    fn identifiers_come_from_the_subject_field_and_identifying_questions_in_repeats() {
        let def = r#"{
            "settings": {"form_id": "hh", "subject_field": "head"},
            "survey": [
                {"type": "text", "name": "head", "label": "Head of household"},
                {"type": "text", "name": "village", "label": "Village"},
                {"type": "begin_repeat", "name": "members", "label": "Members"},
                {"type": "text", "name": "member", "label": "Name", "identifying": "yes"},
                {"type": "end_repeat"}
            ]
        }"#;
        let survey = Survey::parse_json(def).expect("form");
        let answers: Answers = serde_json::from_str(
            r#"{"head": "Amina Bello", "village": "Kano",
                "members": [{"member": "Musa Bello"}, {"member": " amina  bello"}, {}]}"#,
        )
        .expect("answers");
        assert_eq!(
            identifiers(&survey, &answers),
            ["amina bello", "musa bello"]
        );
    }

    #[test]
    fn identifying_must_be_yes_or_no_on_a_question() {
        let def = r#"{
            "settings": {"form_id": "hh"},
            "survey": [
                {"type": "text", "name": "a", "label": "A", "identifying": "maybe"},
                {"type": "note", "name": "n", "label": "N", "identifying": "yes"}
            ]
        }"#;
        let err = Survey::parse_json(def).expect_err("refused").to_string();
        assert!(err.contains("`maybe` is not yes or no"), "{err}");
        assert!(
            err.contains("only a question with an answer can be identifying"),
            "{err}"
        );
    }
}
