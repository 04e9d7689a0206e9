//! The sheets of a form as rows of cells keyed by column, whichever file they came from: a
//! workbook (`.xlsx`, `.xls`) or the native JSON. Column headers are normalised here, once, the
//! way XLSForm reads them: case and spacing do not matter, the old spellings (`caption`,
//! `relevance`, `jr:count`, `image`, …) mean their current columns, and a language suffix
//! (`label::Français (fr)`) stays attached to its column. Columns XLSForm does not know are
//! kept exactly as written, because a choice filter may refer to them by that name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One row of a sheet: its cells by normalised column, and its number in the file it came
/// from (the spreadsheet row, header = 1; or the 1-based index in a JSON array).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Row {
    pub cells: BTreeMap<String, String>,
    #[serde(skip)]
    pub number: usize,
}

impl Row {
    /// A row from cells already keyed by normalised column.
    pub fn new(number: usize, cells: BTreeMap<String, String>) -> Row {
        Row { cells, number }
    }

    /// The trimmed cell of `column`, `None` when absent or blank.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.cells
            .get(column)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// Whether every cell is blank.
    pub fn is_blank(&self) -> bool {
        self.cells.values().all(|v| v.trim().is_empty())
    }

    /// Every variant of a translatable column: `(language, text)`, the unsuffixed column's
    /// language being `None`.
    pub fn variants<'a>(
        &'a self,
        column: &'a str,
    ) -> impl Iterator<Item = (Option<&'a str>, &'a str)> + 'a {
        self.cells.iter().filter_map(move |(k, v)| {
            let v = v.trim();
            if v.is_empty() {
                return None;
            }
            if k == column {
                return Some((None, v));
            }
            let lang = k.strip_prefix(column)?.strip_prefix("::")?;
            Some((Some(lang), v))
        })
    }
}

/// Which sheet a header belongs to; each has its own known columns and aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetKind {
    Settings,
    Survey,
    Choices,
    ExternalChoices,
    Entities,
}

/// Columns of the survey sheet that may carry a language suffix.
pub const TRANSLATABLE_SURVEY: [&str; 9] = [
    "label",
    "hint",
    "guidance_hint",
    "constraint_message",
    "required_message",
    "media::image",
    "media::big-image",
    "media::audio",
    "media::video",
];

/// Columns of the choices sheet that may carry a language suffix.
pub const TRANSLATABLE_CHOICES: [&str; 5] = [
    "label",
    "media::image",
    "media::big-image",
    "media::audio",
    "media::video",
];

const SURVEY_COLUMNS: [&str; 23] = [
    "type",
    "name",
    "label",
    "hint",
    "guidance_hint",
    "required",
    "required_message",
    "relevant",
    "constraint",
    "constraint_message",
    "calculation",
    "trigger",
    "default",
    "read_only",
    "identifying",
    "appearance",
    "choice_filter",
    "parameters",
    "repeat_count",
    "autoplay",
    "save_to",
    "disabled",
    "no_app_error_string",
];

const CHOICE_COLUMNS: [&str; 3] = ["list_name", "name", "label"];

const SETTINGS_COLUMNS: [&str; 15] = [
    "form_id",
    "form_title",
    "version",
    "default_language",
    "instance_name",
    "allow_choice_duplicates",
    "style",
    "public_key",
    "submission_url",
    "subject_field",
    "name",
    "namespaces",
    "auto_send",
    "auto_delete",
    "clean_text_values",
];

const MEDIA: [&str; 4] = ["image", "big-image", "audio", "video"];

/// Old or alternative spellings of survey columns, by their snake_case form.
fn survey_alias(snake: &str) -> Option<&'static str> {
    Some(match snake {
        "caption" => "label",
        "relevance" => "relevant",
        "readonly" => "read_only",
        "calculate" => "calculation",
        "constraining_message" => "constraint_message",
        "count" | "jr:count" => "repeat_count",
        "requiredmsg" => "required_message",
        "noapperrorstring" => "no_app_error_string",
        "command" => "type",
        "tag" | "value" => "name",
        "image" => "media::image",
        "big-image" => "media::big-image",
        "audio" => "media::audio",
        "video" => "media::video",
        _ => return None,
    })
}

/// `bind::x`, `control::x` spellings of columns XLSForm also has plainly.
fn prefixed_alias(prefix: &str, rest: &str) -> Option<&'static str> {
    Some(match (prefix, rest) {
        ("bind", "relevant") => "relevant",
        ("bind", "required") => "required",
        ("bind", "constraint") => "constraint",
        ("bind", "calculate") => "calculation",
        ("bind", "readonly") => "read_only",
        ("bind", "jr:constraintMsg") => "constraint_message",
        ("bind", "jr:requiredMsg") => "required_message",
        ("control", "appearance") => "appearance",
        ("control", "jr:count") => "repeat_count",
        _ => return None,
    })
}

/// `Form Title` → `form_title`: lower case, runs of spaces as one `_`.
pub fn snake_case(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}

/// The canonical key of a column header on `sheet`.
pub fn normalise_header(sheet: SheetKind, header: &str) -> String {
    let header = header.split_whitespace().collect::<Vec<_>>().join(" ");
    let snake = snake_case(&header);
    let known = |c: &str| match sheet {
        SheetKind::Survey => SURVEY_COLUMNS.contains(&c),
        SheetKind::Choices | SheetKind::ExternalChoices => CHOICE_COLUMNS.contains(&c),
        SheetKind::Settings => SETTINGS_COLUMNS.contains(&c),
        SheetKind::Entities => true,
    };
    if known(&snake) {
        return snake;
    }
    match sheet {
        SheetKind::Settings => {
            return match snake.as_str() {
                "set_form_title" | "title" => "form_title".into(),
                "set_form_id" | "id_string" => "form_id".into(),
                _ => snake,
            };
        }
        SheetKind::Entities => return snake,
        SheetKind::Survey | SheetKind::Choices | SheetKind::ExternalChoices => {}
    }
    if matches!(sheet, SheetKind::Choices | SheetKind::ExternalChoices) {
        match snake.as_str() {
            "list_name" | "list" => return "list_name".into(),
            "value" => return "name".into(),
            "caption" => return "label".into(),
            _ => {}
        }
    }
    // Split into a column and its suffixes: `::` when present; a single `:` only for the old
    // `label:English` spelling, keeping `jr:count` and similar namespaced names whole.
    let tokens: Vec<String> = if header.contains("::") {
        header.split("::").map(|t| t.trim().to_owned()).collect()
    } else if header.contains(':') {
        let mut out: Vec<String> = Vec::new();
        let parts: Vec<&str> = header.split(':').map(str::trim).collect();
        let mut i = 0;
        while i < parts.len() {
            if parts[i] == "jr" && i + 1 < parts.len() {
                out.push(format!("jr:{}", parts[i + 1]));
                i += 2;
            } else {
                out.push(parts[i].to_owned());
                i += 1;
            }
        }
        out
    } else {
        vec![header.clone()]
    };
    let first = snake_case(&tokens[0]);
    let rest = &tokens[1..];
    let (column, rest): (String, &[String]) = match (first.as_str(), rest) {
        ("bind" | "control" | "body", [name, more @ ..]) => match prefixed_alias(&first, name) {
            Some(c) => (c.to_owned(), more),
            None => (format!("{first}::{name}"), more),
        },
        ("media", [kind, more @ ..]) if MEDIA.contains(&snake_case(kind).as_str()) => {
            (format!("media::{}", snake_case(kind)), more)
        }
        ("instance", [name, more @ ..]) => (format!("instance::{name}"), more),
        _ => match survey_alias(&first).filter(|_| sheet == SheetKind::Survey) {
            Some(c) => (c.to_owned(), rest),
            None if sheet != SheetKind::Survey && MEDIA.contains(&first.as_str()) => {
                (format!("media::{first}"), rest)
            }
            None if known(&first) => (first.clone(), rest),
            // Unknown: kept as written (a choice filter may use the name).
            None => return header,
        },
    };
    let translatable = match sheet {
        SheetKind::Survey => TRANSLATABLE_SURVEY.contains(&column.as_str()),
        _ => TRANSLATABLE_CHOICES.contains(&column.as_str()),
    };
    match rest {
        [] => column,
        [lang] if translatable => format!("{column}::{lang}"),
        _ => format!("{column}::{}", rest.join("::")),
    }
}

/// The language of a translatable column key, if it has one: `label::Français (fr)` →
/// `Français (fr)`.
pub fn language_of(key: &str) -> Option<(&'static str, &str)> {
    TRANSLATABLE_SURVEY
        .iter()
        .chain(TRANSLATABLE_CHOICES.iter())
        .find_map(|c| {
            key.strip_prefix(c)
                .and_then(|r| r.strip_prefix("::"))
                .filter(|lang| !lang.is_empty())
                .map(|lang| (*c, lang))
        })
}

/// Excel's typographic quotes as the plain ones expressions need, as XLSForm does.
pub fn plain_quotes(s: &str) -> String {
    s.replace(['\u{2018}', '\u{2019}'], "'")
        .replace(['\u{201C}', '\u{201D}'], "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_and_space_insensitive_and_aliases_resolve() {
        let s = |h| normalise_header(SheetKind::Survey, h);
        assert_eq!(s("Type"), "type");
        assert_eq!(s(" Constraint  Message "), "constraint_message");
        assert_eq!(s("caption"), "label");
        assert_eq!(s("relevance"), "relevant");
        assert_eq!(s("jr:count"), "repeat_count");
        assert_eq!(s("bind::jr:constraintMsg"), "constraint_message");
        assert_eq!(s("bind::odk:length"), "bind::odk:length");
        assert_eq!(s("control::appearance"), "appearance");
        assert_eq!(s("image"), "media::image");
        assert_eq!(
            s("media::image::English (en)"),
            "media::image::English (en)"
        );
        assert_eq!(s("label::English (en)"), "label::English (en)");
        assert_eq!(s("Label::Français (fr)"), "label::Français (fr)");
        assert_eq!(s("label:English"), "label::English");
        assert_eq!(s("hint::Swahili (sw)"), "hint::Swahili (sw)");
        assert_eq!(s("calculation"), "calculation");
        assert_eq!(s("My Notes"), "My Notes");
    }

    #[test]
    fn choices_keep_unknown_columns_as_written() {
        let c = |h| normalise_header(SheetKind::Choices, h);
        assert_eq!(c("list name"), "list_name");
        assert_eq!(c("List_Name"), "list_name");
        assert_eq!(c("value"), "name");
        assert_eq!(c("label::English (en)"), "label::English (en)");
        assert_eq!(c("District"), "District");
        assert_eq!(c("image"), "media::image");
    }

    #[test]
    fn settings_aliases() {
        let s = |h| normalise_header(SheetKind::Settings, h);
        assert_eq!(s("Form Title"), "form_title");
        assert_eq!(s("id_string"), "form_id");
        assert_eq!(s("Default Language"), "default_language");
    }

    #[test]
    fn variants_list_every_language() {
        let mut cells = BTreeMap::new();
        cells.insert("label".to_owned(), "Name".to_owned());
        cells.insert("label::French (fr)".to_owned(), "Nom".to_owned());
        cells.insert("label_extra".to_owned(), "x".to_owned());
        cells.insert("hint::French (fr)".to_owned(), " ".to_owned());
        let row = Row::new(2, cells);
        let v: Vec<_> = row.variants("label").collect();
        assert_eq!(v, vec![(None, "Name"), (Some("French (fr)"), "Nom")]);
        assert_eq!(row.variants("hint").count(), 0);
        assert_eq!(
            language_of("label::French (fr)"),
            Some(("label", "French (fr)"))
        );
        assert_eq!(language_of("label"), None);
    }

    #[test]
    fn smart_quotes_become_plain() {
        assert_eq!(plain_quotes("${a} = \u{2018}yes\u{2019}"), "${a} = 'yes'");
        assert_eq!(plain_quotes("\u{201C}x\u{201D}"), "\"x\"");
    }
}
