//! The HTML of a web form's pages: plain forms that work without script (the script only
//! keeps a draft when the connection drops), labelled for screen readers, one question per
//! page, no third-party asset. Every text from the form or the respondent is escaped here.

use std::fmt::Write;

use fieldsync_protocol::Answer;
use fieldsync_protocol::survey::interview::Screen;
use fieldsync_protocol::survey::{QuestionType, Survey};

/// Escape text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `body` inside the layout, titled `title`.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/f/assets/form.css\">\
         <script src=\"/f/assets/form.js\" defer></script></head>\
         <body><main id=\"main\">{body}</main></body></html>\n",
        esc(title)
    )
}

/// A page with a message only (a closed link, a thank-you).
pub fn message(title: &str, heading: &str, text: &str) -> String {
    layout(
        title,
        &format!("<h1>{}</h1><p>{}</p>", esc(heading), esc(text)),
    )
}

/// The password page.
pub fn password(title: &str, action: &str, state: &str, problem: Option<&str>) -> String {
    let mut b = String::new();
    let _ = write!(b, "<h1>{}</h1>", esc(title));
    b.push_str("<form method=\"post\" action=\"");
    b.push_str(&esc(action));
    b.push_str("\" data-fieldsync-form>");
    hidden_state(&mut b, state);
    problem_box(&mut b, problem);
    b.push_str(
        "<p><label for=\"password\">Password</label>\
         <span class=\"hint\" id=\"password-hint\">Type the password you were given for this survey.</span>\
         <input type=\"password\" id=\"password\" name=\"password\" required autocomplete=\"off\" \
         aria-describedby=\"password-hint\"></p>\
         <p><button type=\"submit\" name=\"action\" value=\"password\" class=\"primary\">Open the survey</button></p></form>",
    );
    layout(title, &b)
}

/// What the page of one screen shows around it.
pub struct Frame<'a> {
    pub title: &'a str,
    pub action: &'a str,
    pub state: &'a str,
    pub problem: Option<&'a str>,
    pub survey: &'a Survey,
    pub language: Option<&'a str>,
    /// What the respondent sent that was refused, shown again to correct.
    pub typed: Option<&'a str>,
}

/// The page of one interview screen.
pub fn screen(f: &Frame<'_>, screen: &Screen<'_>) -> String {
    let mut b = String::new();
    let _ = write!(b, "<p class=\"survey\">{}</p>", esc(f.title));
    // The question's name on the form: for assistive scripts and tests, never shown.
    let question = match screen {
        Screen::Question { question, .. } => question.name.as_str(),
        _ => "",
    };
    let _ = write!(
        b,
        "<form method=\"post\" action=\"{}\" data-fieldsync-form data-question=\"{}\" novalidate>",
        esc(f.action),
        esc(question)
    );
    hidden_state(&mut b, f.state);
    b.push_str("<input type=\"hidden\" name=\"tz\" value=\"\">");
    match screen {
        Screen::Question {
            question,
            label,
            hint,
            place,
            number,
            total,
            notes,
            current,
            choices,
            required,
        } => {
            notes_block(&mut b, notes);
            if !place.is_empty() {
                let _ = write!(b, "<p class=\"place\">{}</p>", esc(&place.join(" › ")));
            }
            let _ = write!(
                b,
                "<p class=\"progress\">Question {number} of about {total}</p>"
            );
            problem_box(&mut b, f.problem);
            let described = match (hint, f.problem) {
                (Some(_), Some(_)) => " aria-describedby=\"hint problem\"",
                (Some(_), None) => " aria-describedby=\"hint\"",
                (None, Some(_)) => " aria-describedby=\"problem\"",
                (None, None) => "",
            };
            let invalid = if f.problem.is_some() {
                " aria-invalid=\"true\""
            } else {
                ""
            };
            let req = if *required {
                " <span class=\"required\">(required)</span>"
            } else {
                ""
            };
            // What was refused, else the answer so far, else the form's default.
            let text = f.typed.map(str::to_owned).unwrap_or_else(|| {
                current
                    .map(Answer::to_text)
                    .unwrap_or_else(|| question.static_default().unwrap_or_default().to_owned())
            });
            match &question.qtype {
                QuestionType::SelectOne(_) | QuestionType::SelectMultiple(_) => {
                    let multiple = matches!(question.qtype, QuestionType::SelectMultiple(_));
                    let picked: Vec<&str> = text.split_whitespace().collect();
                    let _ = write!(
                        b,
                        "<fieldset{described}{invalid}><legend><h1>{}{req}</h1></legend>",
                        esc(label)
                    );
                    hint_block(&mut b, hint.as_deref());
                    for (i, (choice, choice_label)) in choices.iter().enumerate() {
                        let checked = if picked.contains(&choice.name.as_str()) {
                            " checked"
                        } else {
                            ""
                        };
                        let kind = if multiple { "checkbox" } else { "radio" };
                        let _ = write!(
                            b,
                            "<div class=\"choice\"><input type=\"{kind}\" id=\"c{i}\" name=\"answer\" value=\"{}\"{checked}>\
                             <label for=\"c{i}\">{}</label></div>",
                            esc(&choice.name),
                            esc(choice_label)
                        );
                    }
                    b.push_str("</fieldset>");
                }
                QuestionType::Media(_) => {
                    // Link creation refuses such forms; a later version may still add one.
                    let _ = write!(b, "<h1>{}{req}</h1>", esc(label));
                    b.push_str(
                        "<p class=\"note\">This question takes a file, which only the app can attach.</p>",
                    );
                }
                qtype => {
                    let _ = write!(
                        b,
                        "<h1><label for=\"answer\">{}{req}</label></h1>",
                        esc(label)
                    );
                    hint_block(&mut b, hint.as_deref());
                    let (kind, extra, value) = input_kind(qtype, &text);
                    let _ = write!(
                        b,
                        "<input type=\"{kind}\" id=\"answer\" name=\"answer\" value=\"{}\"{extra}{described}{invalid} autofocus>",
                        esc(&value)
                    );
                }
            }
            b.push_str("<div class=\"buttons\">");
            b.push_str(
                "<button type=\"submit\" name=\"action\" value=\"next\" class=\"primary\">Next</button>",
            );
            if !*required {
                b.push_str("<button type=\"submit\" name=\"action\" value=\"skip\">Skip</button>");
            }
            if question.repeat.is_some() {
                b.push_str(
                    "<button type=\"submit\" name=\"action\" value=\"delete\">Remove this entry</button>",
                );
            }
            // The first question has nothing before it.
            if *number > 1 {
                b.push_str("<button type=\"submit\" name=\"action\" value=\"back\">Back</button>");
            }
            b.push_str("</div>");
        }
        Screen::AddEntry {
            repeat,
            place,
            entries,
            notes,
        } => {
            notes_block(&mut b, notes);
            if !place.is_empty() {
                let _ = write!(b, "<p class=\"place\">{}</p>", esc(&place.join(" › ")));
            }
            problem_box(&mut b, f.problem);
            let label = repeat
                .label
                .get(f.language)
                .unwrap_or(&repeat.name)
                .trim()
                .to_owned();
            let _ = write!(
                b,
                "<h1>{}</h1><p>{entries} so far. Add another?</p><div class=\"buttons\">\
                 <button type=\"submit\" name=\"action\" value=\"add\" class=\"primary\">Add another</button>\
                 <button type=\"submit\" name=\"action\" value=\"noadd\">No more</button>\
                 <button type=\"submit\" name=\"action\" value=\"back\">Back</button></div>",
                esc(&label)
            );
        }
        Screen::Review {
            notes,
            answers,
            errors,
        } => {
            notes_block(&mut b, notes);
            b.push_str("<h1>Check your answers</h1>");
            problem_box(&mut b, f.problem);
            if !errors.is_empty() {
                b.push_str(
                    "<div class=\"problem\" role=\"alert\"><p>These need an answer or a change before you can submit:</p><ul>",
                );
                for e in errors {
                    let _ = write!(b, "<li>{}</li>", esc(&e.to_string()));
                }
                b.push_str("</ul></div>");
            }
            b.push_str("<dl class=\"review\">");
            for (question, value) in answers {
                let _ = write!(b, "<dt>{}</dt><dd>{}</dd>", esc(question), esc(value));
            }
            b.push_str("</dl><div class=\"buttons\">");
            if errors.is_empty() {
                b.push_str(
                    "<button type=\"submit\" name=\"action\" value=\"submit\" class=\"primary\">Submit</button>",
                );
            }
            b.push_str(
                "<button type=\"submit\" name=\"action\" value=\"back\">Back</button></div>",
            );
        }
        Screen::ConfirmQuit | Screen::Done(_) => {}
    }
    language_choice(&mut b, f.survey, f.language);
    b.push_str("</form>");
    layout(f.title, &b)
}

/// The input element for a question that is typed, and the value to show in it.
fn input_kind(qtype: &QuestionType, current: &str) -> (&'static str, &'static str, String) {
    match qtype {
        QuestionType::Integer => (
            "number",
            " step=\"1\" inputmode=\"numeric\"",
            current.to_owned(),
        ),
        QuestionType::Decimal | QuestionType::Range => (
            "number",
            " step=\"any\" inputmode=\"decimal\"",
            current.to_owned(),
        ),
        QuestionType::Date => ("date", "", current.to_owned()),
        QuestionType::Time => ("time", "", current.get(..5).unwrap_or(current).to_owned()),
        // A stored `2024-06-14T09:12:00.000+03:00` shows as its local part.
        QuestionType::DateTime => (
            "datetime-local",
            "",
            current.get(..16).unwrap_or(current).to_owned(),
        ),
        _ => ("text", " autocomplete=\"off\"", current.to_owned()),
    }
}

fn hidden_state(b: &mut String, state: &str) {
    let _ = write!(
        b,
        "<input type=\"hidden\" name=\"state\" value=\"{}\">",
        esc(state)
    );
}

fn problem_box(b: &mut String, problem: Option<&str>) {
    if let Some(p) = problem {
        let _ = write!(
            b,
            "<p class=\"problem\" id=\"problem\" role=\"alert\">{}</p>",
            esc(p)
        );
    }
}

fn hint_block(b: &mut String, hint: Option<&str>) {
    if let Some(h) = hint.filter(|h| !h.is_empty()) {
        let _ = write!(b, "<p class=\"hint\" id=\"hint\">{}</p>", esc(h));
    }
}

fn notes_block(b: &mut String, notes: &[String]) {
    for n in notes.iter().filter(|n| !n.is_empty()) {
        let _ = write!(b, "<p class=\"note\">{}</p>", esc(n));
    }
}

fn language_choice(b: &mut String, survey: &Survey, current: Option<&str>) {
    let languages = survey.languages();
    if languages.len() < 2 {
        return;
    }
    b.push_str(
        "<p class=\"language\"><label for=\"language\">Language</label> <select id=\"language\" name=\"language\">",
    );
    for l in languages {
        let selected = if Some(l.as_str()) == current {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            b,
            "<option value=\"{}\"{selected}>{}</option>",
            esc(l),
            esc(l)
        );
    }
    b.push_str(
        "</select> <button type=\"submit\" name=\"action\" value=\"language\">Change</button></p>",
    );
}
