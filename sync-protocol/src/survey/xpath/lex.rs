//! Splitting expression text into tokens, applying XPath 1.0's rule (section 3.7) that tells
//! the operator `*`/`and`/`or`/`div`/`mod` from a name test or an element name, and collecting
//! the `${name}` references (also those inside string literals) with their columns.

use super::{Reference, XPathError, XPathErrorKind};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(f64),
    Str(String),
    /// `${name}` or `${last-saved#name}`.
    Ref {
        name: String,
        last_saved: bool,
    },
    /// A (possibly prefixed) name: an element name test, or a function name before `(`.
    Name(String),
    /// `*` as a name test.
    Star,
    /// An operator, including `*` as multiplication and the operator names.
    Op(&'static str),
    Slash,
    SlashSlash,
    Pipe,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    DotDot,
    At,
}

impl Tok {
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Num(n) => format!("number `{}`", super::convert::format_number(*n)),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Ref { name, last_saved } => {
                let prefix = if *last_saved { "last-saved#" } else { "" };
                format!("`${{{prefix}{name}}}`")
            }
            Tok::Name(n) => format!("name `{n}`"),
            Tok::Star => "`*`".to_owned(),
            Tok::Op(o) => format!("`{o}`"),
            Tok::Slash => "`/`".to_owned(),
            Tok::SlashSlash => "`//`".to_owned(),
            Tok::Pipe => "`|`".to_owned(),
            Tok::LParen => "`(`".to_owned(),
            Tok::RParen => "`)`".to_owned(),
            Tok::LBracket => "`[`".to_owned(),
            Tok::RBracket => "`]`".to_owned(),
            Tok::Comma => "`,`".to_owned(),
            Tok::Dot => "`.`".to_owned(),
            Tok::DotDot => "`..`".to_owned(),
            Tok::At => "`@`".to_owned(),
        }
    }

    /// Whether this token can end an operand, so that a following `*` or name is an operator.
    fn ends_operand(&self) -> bool {
        matches!(
            self,
            Tok::Num(_)
                | Tok::Str(_)
                | Tok::Ref { .. }
                | Tok::Name(_)
                | Tok::Star
                | Tok::RParen
                | Tok::RBracket
                | Tok::Dot
                | Tok::DotDot
        )
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) column: usize,
}

pub(super) struct Lexed {
    pub(super) tokens: Vec<Token>,
    pub(super) references: Vec<Reference>,
}

pub(super) fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

pub(super) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// An XML NCName-like question name: a letter or `_`, then letters, digits, `_`, `-`, `.`.
pub(super) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Reads the inside of `${...}`: `name` or `last-saved#name`.
pub(super) fn parse_reference(inner: &str) -> Option<(String, bool)> {
    let (name, last_saved) = match inner.strip_prefix("last-saved#") {
        Some(rest) => (rest, true),
        None => (inner, false),
    };
    is_valid_name(name).then(|| (name.to_owned(), last_saved))
}

pub(super) fn lex(text: &str) -> Result<Lexed, XPathError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut references = Vec::new();
    let err = |column: usize, kind| Err(XPathError::new(column, kind));
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        let after_operand = tokens.last().is_some_and(|t| t.tok.ends_operand());
        let (tok, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            ',' => (Tok::Comma, 1),
            '@' => (Tok::At, 1),
            '|' => (Tok::Pipe, 1),
            '+' => (Tok::Op("+"), 1),
            '-' => (Tok::Op("-"), 1),
            '=' => (Tok::Op("="), 1),
            '!' if next == Some('=') => (Tok::Op("!="), 2),
            '<' if next == Some('=') => (Tok::Op("<="), 2),
            '<' => (Tok::Op("<"), 1),
            '>' if next == Some('=') => (Tok::Op(">="), 2),
            '>' => (Tok::Op(">"), 1),
            '*' if after_operand => (Tok::Op("*"), 1),
            '*' => (Tok::Star, 1),
            '/' if next == Some('/') => (Tok::SlashSlash, 2),
            '/' => (Tok::Slash, 1),
            '.' if next == Some('.') => (Tok::DotDot, 2),
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => lex_number(&chars[i..]),
            '.' => (Tok::Dot, 1),
            '0'..='9' => lex_number(&chars[i..]),
            '\'' | '"' => {
                let Some(end) = chars[i + 1..].iter().position(|&q| q == c) else {
                    return err(column, XPathErrorKind::UnclosedString(c));
                };
                let body: String = chars[i + 1..i + 1 + end].iter().collect();
                references_in_literal(&chars[i + 1..i + 1 + end], column + 1, &mut references);
                (Tok::Str(body), end + 2)
            }
            '$' if next == Some('{') => {
                let Some(close) = chars[i..].iter().position(|&q| q == '}') else {
                    return err(column, XPathErrorKind::BadReference);
                };
                let inner: String = chars[i + 2..i + close].iter().collect();
                let Some((name, last_saved)) = parse_reference(&inner) else {
                    return err(column, XPathErrorKind::BadReference);
                };
                references.push(Reference {
                    name: name.clone(),
                    column,
                    last_saved,
                });
                (Tok::Ref { name, last_saved }, close + 1)
            }
            '$' => {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|&&c| is_name_char(c))
                    .collect();
                return err(column, XPathErrorKind::Variable(name));
            }
            c if is_name_start(c) => {
                let mut len = chars[i..].iter().take_while(|&&c| is_name_char(c)).count();
                // A prefixed name (`jr:choice-name`); `::` is an axis, refused below.
                if chars.get(i + len) == Some(&':')
                    && chars.get(i + len + 1).is_some_and(|&c| is_name_start(c))
                {
                    len += 1 + chars[i + len + 1..]
                        .iter()
                        .take_while(|&&c| is_name_char(c))
                        .count();
                }
                let name: String = chars[i..i + len].iter().collect();
                if chars.get(i + len) == Some(&':') && chars.get(i + len + 1) == Some(&':') {
                    return err(column, XPathErrorKind::Axis(name));
                }
                let op = match name.as_str() {
                    "and" => Some("and"),
                    "or" => Some("or"),
                    "div" => Some("div"),
                    "mod" => Some("mod"),
                    _ => None,
                };
                match op {
                    Some(op) if after_operand => (Tok::Op(op), len),
                    _ => (Tok::Name(name), len),
                }
            }
            other => return err(column, XPathErrorKind::UnexpectedChar(other.to_string())),
        };
        tokens.push(Token { tok, column });
        i += len;
    }
    Ok(Lexed { tokens, references })
}

/// Records `${name}` references written inside a string literal starting at `column`;
/// anything else that looks like `${` is left alone, as it is only text.
fn references_in_literal(body: &[char], column: usize, out: &mut Vec<Reference>) {
    let mut i = 0;
    while i + 1 < body.len() {
        if body[i] == '$'
            && body[i + 1] == '{'
            && let Some(close) = body[i..].iter().position(|&c| c == '}')
            && let Some((name, last_saved)) =
                parse_reference(&body[i + 2..i + close].iter().collect::<String>())
        {
            out.push(Reference {
                name,
                column: column + i,
                last_saved,
            });
            i += close + 1;
            continue;
        }
        i += 1;
    }
}

/// XPath's `Number`: digits with an optional fraction, or `.digits`; no sign, no exponent.
fn lex_number(chars: &[char]) -> (Tok, usize) {
    let mut len = 0;
    let mut seen_dot = false;
    for &c in chars {
        match c {
            '0'..='9' => {}
            '.' if !seen_dot && chars.get(len + 1) != Some(&'.') => seen_dot = true,
            _ => break,
        }
        len += 1;
    }
    let text: String = chars[..len].iter().collect();
    (Tok::Num(text.parse().unwrap_or(f64::NAN)), len)
}
