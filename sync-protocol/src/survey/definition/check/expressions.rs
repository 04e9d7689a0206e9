//! The cells that hold expressions (relevant, constraint, calculation, required, defaults,
//! choice filters, triggers) and the `${name}` references in them and in labels: parsed when
//! the form is loaded, each reference checked to name exactly one row.

use super::*;

impl Builder {
    /// A `choice_filter`, as the expression that selects the shown choices:
    /// `instance('LIST')/root/item[FILTER]`, so that inside the filter a bare name is a column
    /// of the choice and `${name}` an answer, as in ODK.
    pub(super) fn choice_filter(&mut self, r: &Row, qtype: &QuestionType) -> Option<XPath> {
        let cell = r.get("choice_filter")?;
        let plain = self.parse_at(r, "choice_filter", cell)?;
        let from_file = qtype.select().and_then(|s| match &s.source {
            ChoiceSource::File(file) => Some(crate::survey::files::instance_id(file)),
            _ => None,
        });
        let Some(list) = qtype.list().or(from_file) else {
            // A select from an external list: kept as written, applied per choice.
            return Some(plain);
        };
        let composed = format!("instance('{list}')/root/item[{cell}]");
        match XPath::parse(&composed) {
            Ok(x) => Some(x),
            Err(e) => {
                self.row_err(r, "choice_filter", e.to_string());
                None
            }
        }
    }

    /// Parses the expression in `column` and checks its references.
    pub(super) fn expression(&mut self, r: &Row, column: &str) -> Option<XPath> {
        let cell = r.get(column)?;
        self.parse_at(r, column, cell)
    }

    pub(super) fn parse_at(&mut self, r: &Row, column: &str, cell: &str) -> Option<XPath> {
        match XPath::parse(cell) {
            Ok(x) => self.references_ok(r, column, &x).then_some(x),
            Err(e) => {
                self.row_err(r, column, format!("{e}"));
                None
            }
        }
    }

    /// Every `${name}` must name exactly one row of the survey sheet.
    pub(super) fn references_ok(&mut self, r: &Row, column: &str, x: &XPath) -> bool {
        let mut ok = true;
        let mut seen: Vec<String> = Vec::new();
        for reference in x.references() {
            let name = reference.name.clone();
            if seen.contains(&name) {
                continue;
            }
            seen.push(name.clone());
            let rows = self.names.get(&name).cloned().unwrap_or_default();
            match rows.as_slice() {
                [] => {
                    let msg = match self.refused.get(&name) {
                        Some(row) => format!(
                            "`${{{name}}}` refers to row {row}, whose type is refused; fix that row first"
                        ),
                        None => format!(
                            "`${{{name}}}` refers to no question, group or repeat of this form; check the name against the survey sheet's name column"
                        ),
                    };
                    self.row_err(r, column, msg);
                    ok = false;
                }
                [_] => {}
                several => {
                    let list = several
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    let msg = format!(
                        "`${{{name}}}` is ambiguous: rows {list} are all named `{name}`; rename one so the reference names one row"
                    );
                    self.row_err(r, column, msg);
                    ok = false;
                }
            }
        }
        ok
    }

    /// `required` and `read_only`: yes/no, or an expression.
    pub(super) fn requirement(&mut self, r: &Row, column: &str) -> Requirement {
        let Some(cell) = r.get(column) else {
            return Requirement::Never;
        };
        match yes_no(cell) {
            Some(true) => Requirement::Always,
            Some(false) => Requirement::Never,
            None => match self.parse_at(r, column, cell) {
                Some(x) => Requirement::When(x),
                None => Requirement::Never,
            },
        }
    }

    /// A static default, or a dynamic one (an expression) as XLSForm tells them apart.
    pub(super) fn default_value(&mut self, r: &Row, qtype: &QuestionType) -> Option<DefaultValue> {
        let cell = r.get("default")?;
        if is_dynamic_default(cell, qtype) {
            return self.parse_at(r, "default", cell).map(DefaultValue::Dynamic);
        }
        Some(DefaultValue::Value(cell.to_owned()))
    }

    /// `trigger`: `${a}` or several, space-separated.
    pub(super) fn trigger(&mut self, r: &Row) -> Vec<String> {
        let Some(cell) = r.get("trigger") else {
            return Vec::new();
        };
        match XPath::parse(cell) {
            Ok(x) if self.references_ok(r, "trigger", &x) => {
                x.references().into_iter().map(|re| re.name).collect()
            }
            Ok(_) => Vec::new(),
            Err(_) => {
                self.row_err(r, "trigger", format!("`{cell}` is not a list of references; write `${{question}}`, or several separated by spaces"));
                Vec::new()
            }
        }
    }

    /// `${name}` references in labels, hints and messages: each must name one row.
    pub(super) fn piping(&mut self, r: &Row) -> Vec<String> {
        let mut out = Vec::new();
        let cells: Vec<(String, String)> = r
            .cells
            .iter()
            .filter(|(k, v)| {
                v.contains("${")
                    && [
                        "label",
                        "hint",
                        "guidance_hint",
                        "constraint_message",
                        "required_message",
                    ]
                    .iter()
                    .any(|c| k.as_str() == *c || k.starts_with(&format!("{c}::")))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (column, text) in cells {
            for name in piped_names(&text) {
                match name {
                    Ok(name) => {
                        let found = self.names.get(&name).map_or(0, Vec::len);
                        if found == 0 {
                            let msg = match self.refused.get(&name) {
                                Some(row) => format!(
                                    "`${{{name}}}` in the text refers to row {row}, whose type is refused; fix that row first"
                                ),
                                None => format!(
                                    "`${{{name}}}` in the text refers to no question of this form; check the name"
                                ),
                            };
                            self.row_err(r, &column, msg);
                        } else if found > 1 {
                            self.row_err(r, &column, format!("`${{{name}}}` in the text is ambiguous: several rows are named `{name}`"));
                        } else if !out.contains(&name) {
                            out.push(name);
                        }
                    }
                    Err(bad) => {
                        self.row_err(
                            r,
                            &column,
                            format!(
                                "`{bad}` is not a reference; write `${{name}}` with a question name"
                            ),
                        );
                    }
                }
            }
        }
        out
    }
}

/// Whether a default is an expression: XLSForm counts one with a function call, a reference,
/// a predicate, a union or arithmetic (a `-` in a date or location is not arithmetic).
fn is_dynamic_default(cell: &str, qtype: &QuestionType) -> bool {
    if cell.contains("${") || cell.contains('[') || cell.contains('|') {
        return true;
    }
    let dashes_are_text = matches!(
        qtype,
        QuestionType::Date
            | QuestionType::DateTime
            | QuestionType::Time
            | QuestionType::GeoPoint
            | QuestionType::GeoTrace
            | QuestionType::GeoShape
    );
    let function_call = cell
        .char_indices()
        .filter(|(_, c)| *c == '(')
        .any(|(i, _)| {
            cell[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    let chars: Vec<char> = cell.chars().collect();
    let minus = chars.iter().enumerate().any(|(i, &c)| {
        if c != '-' {
            return false;
        }
        let before = i.checked_sub(1).and_then(|j| chars.get(j));
        let after = chars.get(i + 1);
        let operand_end = |c: Option<&char>| c.is_some_and(|c| c.is_ascii_digit() || *c == ')');
        let spaced =
            before.is_some_and(|c| c.is_whitespace()) && after.is_some_and(|c| c.is_whitespace());
        spaced || (operand_end(before) && after.is_some_and(|c| c.is_ascii_digit() || *c == '('))
    });
    function_call
        || cell.split_whitespace().any(|w| w == "div" || w == "mod")
        || cell.contains('+')
        || cell.contains('*')
        || (minus && !dashes_are_text)
}

/// `${name}` references in label text; `Err` for a `${…}` that is not a name.
fn piped_names(text: &str) -> Vec<Result<String, String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let inner = after[..end].trim();
                let name = inner.strip_prefix("last-saved#").unwrap_or(inner);
                if is_xml_name(name) {
                    out.push(Ok(name.to_owned()));
                } else {
                    out.push(Err(format!("${{{inner}}}")));
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push(Err(rest[start..].chars().take(20).collect()));
                break;
            }
        }
    }
    out
}
