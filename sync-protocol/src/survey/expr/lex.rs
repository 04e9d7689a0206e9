//! Splitting expression text into tokens, rejecting characters outside the subset (paths,
//! predicates, unions) at the column where they appear.

use super::{ExprError, format_number, is_name_char, is_name_start, is_valid_name};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokKind {
    Num(f64),
    Str(String),
    Ref(String),
    Name(String),
    Dot,
    LParen,
    RParen,
    Comma,
    Op(&'static str),
}

impl TokKind {
    pub(super) fn describe(&self) -> String {
        match self {
            TokKind::Num(n) => format!("number `{}`", format_number(*n)),
            TokKind::Str(s) => format!("string {s:?}"),
            TokKind::Ref(n) => format!("`${{{n}}}`"),
            TokKind::Name(n) => format!("`{n}`"),
            TokKind::Dot => "`.`".to_owned(),
            TokKind::LParen => "`(`".to_owned(),
            TokKind::RParen => "`)`".to_owned(),
            TokKind::Comma => "`,`".to_owned(),
            TokKind::Op(o) => format!("`{o}`"),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: TokKind,
    pub(super) column: usize,
}

pub(super) fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let next = chars.get(i + 1).copied();
        let mut push = |kind, len| {
            out.push(Token { kind, column });
            len
        };
        let len = match c {
            ' ' | '\t' | '\n' | '\r' => 1,
            '(' => push(TokKind::LParen, 1),
            ')' => push(TokKind::RParen, 1),
            ',' => push(TokKind::Comma, 1),
            '+' => push(TokKind::Op("+"), 1),
            '-' => push(TokKind::Op("-"), 1),
            '*' => push(TokKind::Op("*"), 1),
            '=' => push(TokKind::Op("="), 1),
            '!' if next == Some('=') => push(TokKind::Op("!="), 2),
            '<' if next == Some('=') => push(TokKind::Op("<="), 2),
            '<' => push(TokKind::Op("<"), 1),
            '>' if next == Some('=') => push(TokKind::Op(">="), 2),
            '>' => push(TokKind::Op(">"), 1),
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => {
                let (n, len) = lex_number(&chars[i..]);
                push(TokKind::Num(n), len)
            }
            '.' if next == Some('.') => {
                return Err(ExprError::UnexpectedChar {
                    found: "..".to_owned(),
                    column,
                });
            }
            '.' => push(TokKind::Dot, 1),
            '0'..='9' => {
                let (n, len) = lex_number(&chars[i..]);
                push(TokKind::Num(n), len)
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&q| q == c)
                    .ok_or(ExprError::UnclosedString { column })?;
                let s: String = chars[i + 1..i + 1 + end].iter().collect();
                push(TokKind::Str(s), end + 2)
            }
            '$' => {
                let rest = &chars[i..];
                let close = rest.iter().position(|&q| q == '}');
                let name: Option<String> = match (rest.get(1), close) {
                    (Some('{'), Some(close)) => Some(rest[2..close].iter().collect()),
                    _ => None,
                };
                match (name, close) {
                    (Some(name), Some(close)) if is_valid_name(&name) => {
                        push(TokKind::Ref(name), close + 1)
                    }
                    _ => return Err(ExprError::BadReference { column }),
                }
            }
            c if is_name_start(c) => {
                let len = chars[i..].iter().take_while(|&&c| is_name_char(c)).count();
                let name: String = chars[i..i + len].iter().collect();
                push(TokKind::Name(name), len)
            }
            '/' if next == Some('/') => {
                return Err(ExprError::UnexpectedChar {
                    found: "//".to_owned(),
                    column,
                });
            }
            '/' => {
                return Err(ExprError::UnexpectedChar {
                    found: "/ (paths are not supported; divide with `div`)".to_owned(),
                    column,
                });
            }
            other => {
                return Err(ExprError::UnexpectedChar {
                    found: other.to_string(),
                    column,
                });
            }
        };
        i += len;
    }
    Ok(out)
}

fn lex_number(chars: &[char]) -> (f64, usize) {
    let mut len = 0;
    let mut seen_dot = false;
    for &c in chars {
        match c {
            '0'..='9' => {}
            '.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        len += 1;
    }
    let text: String = chars[..len].iter().collect();
    (text.parse().unwrap_or(f64::NAN), len)
}
