//! XPath's conversions between strings and numbers, and ODK's date, dateTime and time formats
//! (spec section "Data Types"): parsing them, counting them as days since 1970-01-01, printing
//! them and `format-date()`'s `%` codes.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::NodeValue;

const SECONDS_PER_DAY: f64 = 86_400.0;

/// XPath's number to string: integers without `.0`, no exponent, `NaN`, `±Infinity`.
pub(crate) fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".to_owned()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else if n == 0.0 {
        // Also -0, which XPath prints as 0.
        "0".to_owned()
    } else {
        n.to_string()
    }
}

/// XPath's string to number (`-`? digits with an optional fraction, surrounding whitespace
/// allowed), extended by ODK: a date, dateTime or time counts as days (see the module doc).
/// Anything else, the empty string included, is NaN.
pub(crate) fn parse_number(s: &str) -> f64 {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let digits = t.strip_prefix('-').unwrap_or(t);
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut plain = true;
    for c in digits.chars() {
        match c {
            '0'..='9' => seen_digit = true,
            '.' if !seen_dot => seen_dot = true,
            _ => {
                plain = false;
                break;
            }
        }
    }
    if plain && seen_digit {
        return t.parse().unwrap_or(f64::NAN);
    }
    temporal_days(t).unwrap_or(f64::NAN)
}

/// Days since 1970-01-01 of a date, dateTime or time string (see [`temporal_days_of`]).
fn temporal_days(s: &str) -> Option<f64> {
    parse_temporal(s).map(temporal_days_of)
}

/// A date, dateTime or time value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Temporal {
    Date(Date),
    /// With its offset, or `None` for a local (device-zone) dateTime.
    DateTime(PrimitiveDateTime, Option<UtcOffset>),
    Time(Time, Option<UtcOffset>),
}

/// Dates count whole days; dateTimes count fractional days from 1970-01-01T00:00Z (a local one
/// as if UTC); times count the fraction of their day.
pub(crate) fn temporal_days_of(t: Temporal) -> f64 {
    match t {
        Temporal::Date(d) => date_days(d),
        Temporal::DateTime(dt, offset) => {
            let odt = dt.assume_offset(offset.unwrap_or(UtcOffset::UTC));
            instant_days(odt)
        }
        Temporal::Time(t, _) => time_fraction(t),
    }
}

pub(crate) fn date_days(d: Date) -> f64 {
    f64::from(d.to_julian_day() - EPOCH.to_julian_day())
}

pub(crate) fn instant_days(t: OffsetDateTime) -> f64 {
    // i128 nanoseconds → f64 loses nothing that matters at day scale.
    t.unix_timestamp_nanos() as f64 / 1e9 / SECONDS_PER_DAY
}

pub(crate) fn time_fraction(t: Time) -> f64 {
    let (h, m, s, nanos) = t.as_hms_nano();
    (f64::from(h) * 3600.0 + f64::from(m) * 60.0 + f64::from(s) + f64::from(nanos) / 1e9)
        / SECONDS_PER_DAY
}

const EPOCH: Date = time::macros::date!(1970 - 01 - 01);

/// The date `days` after 1970-01-01 (fraction dropped towards −∞), if representable.
pub(crate) fn date_from_days(days: f64) -> Option<Date> {
    if !days.is_finite() || days.abs() > 3_000_000.0 {
        return None;
    }
    // Bounded above, so the cast is exact.
    let jd = i64::from(EPOCH.to_julian_day()) + days.floor() as i64;
    Date::from_julian_day(i32::try_from(jd).ok()?).ok()
}

/// The instant `days` after 1970-01-01T00:00Z, if representable.
pub(crate) fn instant_from_days(days: f64) -> Option<OffsetDateTime> {
    if !days.is_finite() || days.abs() > 3_000_000.0 {
        return None;
    }
    let nanos = (days * SECONDS_PER_DAY * 1e9).round() as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// The string-value of a node.
pub(crate) fn node_string(v: &NodeValue) -> String {
    match v {
        NodeValue::Text(s) => s.clone(),
        NodeValue::Number(n) => format_number(*n),
        NodeValue::Date(d) => format_date(*d),
        NodeValue::DateTime(dt) => format_datetime(*dt),
        NodeValue::Time(t, offset) => format_time(*t, *offset),
        NodeValue::Empty => String::new(),
    }
}

/// `number()` of a node.
pub(crate) fn node_number(v: &NodeValue) -> f64 {
    match v {
        NodeValue::Text(s) => parse_number(s),
        NodeValue::Number(n) => *n,
        NodeValue::Date(d) => date_days(*d),
        NodeValue::DateTime(dt) => instant_days(*dt),
        NodeValue::Time(t, _) => time_fraction(*t),
        NodeValue::Empty => f64::NAN,
    }
}

pub(crate) fn node_temporal(v: &NodeValue) -> Option<Temporal> {
    match v {
        NodeValue::Text(s) => parse_temporal(s.trim()),
        NodeValue::Date(d) => Some(Temporal::Date(*d)),
        NodeValue::DateTime(dt) => Some(Temporal::DateTime(
            PrimitiveDateTime::new(dt.date(), dt.time()),
            Some(dt.offset()),
        )),
        NodeValue::Time(t, offset) => Some(Temporal::Time(*t, *offset)),
        NodeValue::Number(_) | NodeValue::Empty => None,
    }
}

pub(crate) fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn format_offset(o: UtcOffset) -> String {
    let (h, m, _) = o.as_hms();
    let sign = if o.is_negative() { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
}

fn format_clock(t: Time) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// ODK's dateTime: `YYYY-MM-DDTHH:MM:SS.sss+hh:mm`.
pub(crate) fn format_datetime(dt: OffsetDateTime) -> String {
    format!(
        "{}T{}{}",
        format_date(dt.date()),
        format_clock(dt.time()),
        format_offset(dt.offset())
    )
}

/// ODK's time: `HH:MM:SS.sss+hh:mm` (no offset if none is known).
pub(crate) fn format_time(t: Time, offset: Option<UtcOffset>) -> String {
    format!(
        "{}{}",
        format_clock(t),
        offset.map(format_offset).unwrap_or_default()
    )
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD`, a real calendar day.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.splitn(3, '-');
    let year = digits(parts.next()?, 4)?;
    let month = digits(parts.next()?, 2)?;
    let day = digits(parts.next()?, 2)?;
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
}

/// `Z`, `±hh`, `±hhmm` or `±hh:mm` at the end of `s`: the rest and the offset.
fn split_offset(s: &str) -> Option<(&str, Option<UtcOffset>)> {
    if let Some(rest) = s.strip_suffix('Z') {
        return Some((rest, Some(UtcOffset::UTC)));
    }
    let Some(at) = s.rfind(['+', '-']) else {
        return Some((s, None));
    };
    let (rest, off) = s.split_at(at);
    let sign: i8 = if off.starts_with('-') { -1 } else { 1 };
    let body = &off[1..];
    // Byte slicing below: only ASCII can be an offset.
    if !body.is_ascii() {
        return None;
    }
    let (h, m) = match body.len() {
        2 => (digits(body, 2)?, 0),
        4 => (digits(&body[..2], 2)?, digits(&body[2..], 2)?),
        5 if body.as_bytes()[2] == b':' => (digits(&body[..2], 2)?, digits(&body[3..], 2)?),
        _ => return None,
    };
    let h = i8::try_from(h).ok()?;
    let m = i8::try_from(m).ok()?;
    let offset = UtcOffset::from_hms(sign * h, sign * m, 0).ok()?;
    Some((rest, Some(offset)))
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff` (any number of fraction digits).
fn parse_clock(s: &str) -> Option<Time> {
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let mut parts = main.split(':');
    let h = digits(parts.next()?, 2)?;
    let m = digits(parts.next()?, 2)?;
    let sec = match parts.next() {
        Some(p) => digits(p, 2)?,
        None if frac.is_none() => 0,
        None => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let nanos = match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<9}");
            padded.parse::<u32>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    Time::from_hms_nano(
        u8::try_from(h).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(sec).ok()?,
        nanos,
    )
    .ok()
}

pub(crate) fn parse_time(s: &str) -> Option<(Time, Option<UtcOffset>)> {
    let (clock, offset) = split_offset(s)?;
    Some((parse_clock(clock)?, offset))
}

/// A date, a dateTime (`T` separated, offset optional) or a time.
pub(crate) fn parse_temporal(s: &str) -> Option<Temporal> {
    if let Some(d) = parse_date(s) {
        return Some(Temporal::Date(d));
    }
    if let Some((date, rest)) = s.split_once('T') {
        let date = parse_date(date)?;
        let (time, offset) = parse_time(rest)?;
        return Some(Temporal::DateTime(
            PrimitiveDateTime::new(date, time),
            offset,
        ));
    }
    let (time, offset) = parse_time(s)?;
    Some(Temporal::Time(time, offset))
}

/// The temporal as wall-clock date and time in `zone` (the device's offset): a date is its
/// midnight, a local dateTime stays as written, one with an offset is converted, a time
/// falls on 1970-01-01.
pub(crate) fn in_zone(t: Temporal, zone: UtcOffset) -> PrimitiveDateTime {
    match t {
        Temporal::Date(d) => PrimitiveDateTime::new(d, Time::MIDNIGHT),
        Temporal::DateTime(dt, None) => dt,
        Temporal::DateTime(dt, Some(o)) => {
            let odt = dt.assume_offset(o).to_offset(zone);
            PrimitiveDateTime::new(odt.date(), odt.time())
        }
        Temporal::Time(t, None) => PrimitiveDateTime::new(EPOCH, t),
        Temporal::Time(t, Some(o)) => {
            let odt = PrimitiveDateTime::new(EPOCH, t)
                .assume_offset(o)
                .to_offset(zone);
            PrimitiveDateTime::new(EPOCH, odt.time())
        }
    }
}

/// Checks a `format-date()` format: `%` must be followed by a known code.
pub(crate) fn check_format(format: &str) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(
                    'Y' | 'y' | 'm' | 'n' | 'b' | 'd' | 'e' | 'a' | 'H' | 'h' | 'M' | 'S' | '3'
                    | '%',
                ) => {}
                Some(other) => {
                    return Err(format!(
                        "unknown format code `%{other}`; use %Y %y %m %n %b %d %e %a %H %h %M %S %3 or %% for a percent sign"
                    ));
                }
                None => {
                    return Err("the format ends with `%`; write %% for a percent sign".to_owned());
                }
            }
        }
    }
    Ok(())
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `format-date()`'s codes (spec: "format-date" and "format-date-time"); month and day names
/// are English, as no form locale reaches the engine. Call [`check_format`] first.
pub(crate) fn format_with(dt: PrimitiveDateTime, format: &str) -> Result<String, String> {
    check_format(format)?;
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let year = format!("{:04}", dt.year());
        match chars.next() {
            Some('Y') => out.push_str(&year),
            Some('y') => out.push_str(year.get(year.len() - 2..).unwrap_or_default()),
            Some('m') => out.push_str(&format!("{:02}", u8::from(dt.month()))),
            Some('n') => out.push_str(&u8::from(dt.month()).to_string()),
            Some('b') => out.push_str(MONTHS[usize::from(u8::from(dt.month()) - 1)]),
            Some('d') => out.push_str(&format!("{:02}", dt.day())),
            Some('e') => out.push_str(&dt.day().to_string()),
            Some('a') => {
                out.push_str(WEEKDAYS[usize::from(dt.weekday().number_days_from_monday())]);
            }
            Some('H') => out.push_str(&format!("{:02}", dt.hour())),
            Some('h') => out.push_str(&dt.hour().to_string()),
            Some('M') => out.push_str(&format!("{:02}", dt.minute())),
            Some('S') => out.push_str(&format!("{:02}", dt.second())),
            Some('3') => out.push_str(&format!("{:03}", dt.millisecond())),
            _ => out.push('%'),
        }
    }
    Ok(out)
}
