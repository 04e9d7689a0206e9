//! Whether an answer fits its question's type: numbers, choices from the list, dates, times,
//! locations, ranges; and static defaults, checked the same way.

use super::*;

impl Survey {
    /// Turns what a user typed (or a CSV cell) into an answer of the question's kind: a number
    /// for integer, decimal and range questions, trimmed text otherwise, select_multiple
    /// names joined by single spaces. Only numbers are checked here; call
    /// [`Survey::check_answer`] next.
    pub fn parse_input(&self, name: &str, input: &str) -> Result<Answer, ValidationError> {
        let q = self.answerable_question(name)?;
        let text = input.trim();
        let wrong =
            |message: String| ValidationError::new(name, ValidationErrorKind::WrongType, message);
        match &q.qtype {
            QuestionType::Integer => text.parse::<i64>().map(Answer::Integer).map_err(|_| {
                wrong(format!(
                    "`{text}` is not a whole number; type digits only, e.g. 42"
                ))
            }),
            QuestionType::Decimal | QuestionType::Range => {
                let n = parse_number(text.strip_prefix('+').unwrap_or(text));
                if n.is_finite() {
                    Ok(Answer::Decimal(n))
                } else if text.contains(',') {
                    Err(wrong(format!(
                        "`{text}` is not a number; use `.` as the decimal separator, e.g. 12.5"
                    )))
                } else {
                    Err(wrong(format!(
                        "`{text}` is not a number; type digits with an optional `.`, e.g. 12.5"
                    )))
                }
            }
            QuestionType::SelectMultiple(_) | QuestionType::Rank(_) => Ok(Answer::Text(
                text.split_whitespace().collect::<Vec<_>>().join(" "),
            )),
            QuestionType::GeoPoint
            | QuestionType::GeoTrace
            | QuestionType::GeoShape
            | QuestionType::Meta(crate::survey::types::MetaKind::StartGeopoint) => {
                Ok(Answer::Text(geo_commas(text)))
            }
            _ => Ok(Answer::Text(text.to_owned())),
        }
    }

    /// [`Survey::parse_input`] for what a person types in the field, at `now` (the device's
    /// clock, in its UTC offset): a date question also takes `today`, `yesterday` and `now`; a
    /// dateTime question `now` and a local `YYYY-MM-DD HH:MM[:SS]` (in `now`'s offset); a time
    /// question `now` and a local `HH:MM[:SS]` (given `now`'s offset).
    pub fn parse_typed(
        &self,
        name: &str,
        input: &str,
        now: OffsetDateTime,
    ) -> Result<Answer, ValidationError> {
        let q = self.answerable_question(name)?;
        let text = input.trim();
        let word = text.to_ascii_lowercase();
        let typed = match (&q.qtype, word.as_str()) {
            (QuestionType::Date, "today" | "now") => Some(format_date(now.date())),
            (QuestionType::Date, "yesterday") => now.date().previous_day().map(format_date),
            (QuestionType::DateTime, "now") => Some(format_datetime(now)),
            (QuestionType::DateTime, _) => local_datetime(text, now).map(format_datetime),
            (QuestionType::Time, "now") => Some(format_time(now)),
            (QuestionType::Time, _) => parse_time(text)
                .filter(|(_, offset)| offset.is_none())
                .map(|(clock, _)| format_time(now.replace_time(clock))),
            _ => None,
        };
        match typed {
            Some(text) => Ok(Answer::Text(text)),
            None => self.parse_input(name, input),
        }
    }
}

fn format_date(d: time::Date) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    d.format(&f).unwrap_or_default()
}

/// ODK's dateTime form: `2026-12-01T08:40:00.000+01:00`.
fn format_datetime(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
    );
    t.format(&f).unwrap_or_default()
}

/// ODK's time form: `08:40:00.000+01:00`.
fn format_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
    );
    t.format(&f).unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM[:SS]` (a space or `T`, no offset) as a time in `now`'s offset.
fn local_datetime(text: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let (date, clock) = text.split_once([' ', 'T'])?;
    let date = parse_date(date.trim())?;
    let (clock, offset) = parse_time(clock.trim())?;
    if offset.is_some() {
        return None;
    }
    Some(date.with_time(clock).assume_offset(now.offset()))
}

/// A location typed `lat, lon[, alt[, accuracy]]` (points of a trace or shape separated by
/// `;`) in the stored form `lat lon alt accuracy`; anything else as it is.
fn geo_commas(text: &str) -> String {
    if !text.contains(',') {
        return text.to_owned();
    }
    let point = |p: &str| -> Option<String> {
        let parts: Vec<&str> = p.split(',').map(str::trim).collect();
        let numbers = (2..=4).contains(&parts.len())
            && parts
                .iter()
                .all(|n| n.parse::<f64>().is_ok_and(f64::is_finite));
        numbers.then(|| parts.join(" "))
    };
    let points: Option<Vec<String>> = text
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(point)
        .collect();
    points.map_or_else(|| text.to_owned(), |p| p.join(";"))
}

/// RFC 3339, or ODK's dateTime without seconds' fraction or offset (read as UTC).
pub(crate) fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(dt) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(dt);
    }
    let (date, clock) = s.split_once('T')?;
    let date = parse_date(date)?;
    let (clock, _) = parse_time(clock)?;
    Some(date.with_time(clock).assume_utc())
}

/// Checks a static `default` the way a typed answer is checked (constraints aside).
pub(crate) fn check_default(
    q: &Question,
    default: &str,
    list: Option<&[Choice]>,
) -> Result<(), String> {
    let value = match &q.qtype {
        QuestionType::Integer => Answer::Integer(
            default
                .trim()
                .parse()
                .map_err(|_| "expected a whole number".to_owned())?,
        ),
        QuestionType::Decimal | QuestionType::Range => {
            let n = parse_number(default);
            if !n.is_finite() {
                return Err("expected a number such as 12.5".into());
            }
            Answer::Decimal(n)
        }
        _ => Answer::Text(default.trim().to_owned()),
    };
    check_type(q, &value, list).map_err(|(_, m)| m)
}

fn describe(a: &Answer) -> String {
    match a {
        Answer::Integer(i) => format!("the number {i}"),
        Answer::Decimal(d) => format!("the number {d}"),
        Answer::Text(s) => format!("text {s:?}"),
        Answer::Repeat(r) => format!("a list of {} entries", r.len()),
    }
}

type TypeError = (ValidationErrorKind, String);

fn wrong_type(msg: String) -> TypeError {
    (ValidationErrorKind::WrongType, msg)
}

/// Whether `value` fits the question's type and choice list.
pub(crate) fn check_type(
    q: &Question,
    value: &Answer,
    list: Option<&[Choice]>,
) -> Result<(), TypeError> {
    use QuestionType as Q;
    let text = match (&q.qtype, value) {
        (Q::Integer, Answer::Integer(_)) => return Ok(()),
        (Q::Integer, other) => {
            return Err(wrong_type(format!(
                "expected a whole number, got {}",
                describe(other)
            )));
        }
        (Q::Decimal | Q::Range, Answer::Integer(i)) => return check_range(q, *i as f64),
        (Q::Decimal | Q::Range, Answer::Decimal(d)) if d.is_finite() => {
            return check_range(q, *d);
        }
        (Q::Decimal | Q::Range, other) => {
            return Err(wrong_type(format!(
                "expected a number, got {}",
                describe(other)
            )));
        }
        (Q::Note, _) => {
            return Err((
                ValidationErrorKind::NotAnswerable,
                "a note takes no answer; remove it".into(),
            ));
        }
        (_, Answer::Repeat(_)) => {
            return Err(wrong_type(format!(
                "expected {}, got a list of entries (only a repeat takes those)",
                type_phrase(&q.qtype)
            )));
        }
        (_, Answer::Text(s)) => s.as_str(),
        // Computed and device-filled values may be numbers.
        (Q::Calculate | Q::Hidden | Q::Meta(_), _) => return Ok(()),
        (t, other) => {
            return Err(wrong_type(format!(
                "expected {} as text, got {}",
                type_phrase(t),
                describe(other)
            )));
        }
    };
    let known = |name: &str| list.is_none_or(|l| l.iter().any(|c| c.name == name));
    let or_other = q.qtype.select().is_some_and(|s| s.or_other);
    let in_list = |name: &str| known(name) || (or_other && name == "other");
    let list_name = q.qtype.select().map_or("", |s| s.source.name());
    // A file's choices are known when the form was published with the file.
    let from_list = q.qtype.select().is_some_and(|s| match s.source {
        ChoiceSource::List(_) => true,
        ChoiceSource::File(_) => list.is_some(),
        ChoiceSource::External(_) => false,
    });
    match &q.qtype {
        Q::SelectOne(_) if !from_list => Ok(()),
        Q::SelectOne(_) => {
            let text = text.trim();
            if in_list(text) {
                Ok(())
            } else if text.contains(char::is_whitespace) {
                Err(wrong_type(format!(
                    "select_one takes exactly one choice, got {text:?}"
                )))
            } else {
                Err((
                    ValidationErrorKind::NotInList,
                    format!("`{text}` is not a choice of list `{list_name}`"),
                ))
            }
        }
        Q::SelectMultiple(_) | Q::Rank(_) => {
            let names: Vec<&str> = text.split_whitespace().collect();
            if from_list || matches!(q.qtype, Q::Rank(_)) {
                let shown = q.qtype.list().unwrap_or(list_name);
                if let Some(bad) = names.iter().find(|n| !in_list(n)) {
                    return Err((
                        ValidationErrorKind::NotInList,
                        format!("`{bad}` is not a choice of list `{shown}`"),
                    ));
                }
            }
            let dup = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n));
            if let Some((_, dup)) = dup {
                return Err(wrong_type(format!(
                    "choice `{dup}` is selected twice; list each choice once"
                )));
            }
            Ok(())
        }
        Q::Date => match parse_date(text) {
            Some(_) => Ok(()),
            None => Err(wrong_type(format!(
                "{text:?} is not a date; write YYYY-MM-DD, e.g. 2024-03-31"
            ))),
        },
        Q::DateTime => match parse_datetime(text) {
            Some(_) => Ok(()),
            None => Err(wrong_type(format!(
                "{text:?} is not a date and time; write RFC 3339, e.g. 2024-03-31T14:05:00+02:00"
            ))),
        },
        Q::Time => match parse_time(text) {
            Some(_) => Ok(()),
            None => Err(wrong_type(format!(
                "{text:?} is not a time; write HH:MM or HH:MM:SS, e.g. 14:05"
            ))),
        },
        Q::GeoPoint | Q::Meta(crate::survey::types::MetaKind::StartGeopoint) => {
            check_geopoint(text).map_err(wrong_type)
        }
        Q::GeoTrace | Q::GeoShape => {
            let points: Vec<&str> = text
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            let min = if q.qtype == Q::GeoShape { 3 } else { 2 };
            if points.len() < min {
                return Err(wrong_type(format!(
                    "a {} needs at least {min} points separated by `;`",
                    q.qtype
                )));
            }
            points
                .iter()
                .try_for_each(|p| check_geopoint(p))
                .map_err(wrong_type)
        }
        Q::Media(kind) => crate::media::check_answer(*kind, text).map_err(wrong_type),
        Q::Acknowledge | Q::Trigger if text != "OK" => Err(wrong_type(format!(
            "{text:?} is not an acknowledgement; the answer is `OK`"
        ))),
        _ => Ok(()),
    }
}

/// A range answer within its bounds and on its steps.
fn check_range(q: &Question, n: f64) -> Result<(), TypeError> {
    if q.qtype != QuestionType::Range {
        return Ok(());
    }
    let p = |k: &str, d: f64| {
        q.parameters
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (start, end, step) = (p("start", 1.0), p("end", 10.0), p("step", 1.0));
    let (lo, hi) = if start <= end {
        (start, end)
    } else {
        (end, start)
    };
    if n < lo || n > hi {
        return Err(wrong_type(format!("{n} is outside the range {lo} to {hi}")));
    }
    let steps = (n - start) / step;
    if (steps - steps.round()).abs() > 1e-9 {
        return Err(wrong_type(format!(
            "{n} is not on a step of {step} from {start}"
        )));
    }
    Ok(())
}

fn type_phrase(t: &QuestionType) -> &'static str {
    match t {
        QuestionType::SelectOne(_) => "a choice name",
        QuestionType::SelectMultiple(_) | QuestionType::Rank(_) => "space-separated choice names",
        QuestionType::Date => "a date",
        QuestionType::DateTime => "a date and time",
        QuestionType::Time => "a time",
        QuestionType::GeoPoint | QuestionType::GeoTrace | QuestionType::GeoShape => "a location",
        _ => "text",
    }
}

fn check_geopoint(text: &str) -> Result<(), String> {
    const SHAPE: &str = "write `latitude longitude [altitude [accuracy]]` in decimal degrees and metres, e.g. `-1.2921 36.8219 1795 5`";
    let parts: Vec<f64> = text.split_whitespace().map(parse_number).collect();
    if !(2..=4).contains(&parts.len()) || parts.iter().any(|p| !p.is_finite()) {
        return Err(format!("{text:?} is not a location; {SHAPE}"));
    }
    let (lat, lon) = (parts[0], parts[1]);
    if !(-90.0..=90.0).contains(&lat) {
        return Err(format!(
            "latitude {lat} is out of range; it must be between -90 and 90"
        ));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "longitude {lon} is out of range; it must be between -180 and 180"
        ));
    }
    if parts.get(3).is_some_and(|acc| *acc < 0.0) {
        return Err("accuracy cannot be negative; it is a radius in metres".into());
    }
    Ok(())
}
