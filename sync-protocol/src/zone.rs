//! Time zones for showing instants to people: an export writes its times as ISO 8601 in the
//! zone it was asked for (`--tz Africa/Nairobi`, `--tz +03:00`, `--tz local`), UTC otherwise.
//!
//! Instants are kept as milliseconds since the Unix epoch everywhere else; a zone only
//! changes how one is written. Zone names are looked up in the database bundled with jiff:
//! no file is read.

use jiff::tz::{Offset, TimeZone};

/// A time zone asked for by name or offset.
#[derive(Clone, Debug)]
pub struct Zone {
    tz: TimeZone,
    name: String,
}

impl Default for Zone {
    fn default() -> Self {
        Zone::utc()
    }
}

impl Zone {
    /// Coordinated Universal Time.
    pub fn utc() -> Zone {
        Zone {
            tz: TimeZone::UTC,
            name: "UTC".to_owned(),
        }
    }

    /// A zone the caller found (a machine's own, say), by its IANA name when it has one so
    /// that a server applies the same daylight-saving rules, else as its offset at `at`.
    pub fn of(tz: TimeZone, at: jiff::Timestamp) -> Zone {
        match tz.iana_name() {
            Some(name) => Zone {
                name: name.to_owned(),
                tz,
            },
            None => {
                let offset = tz.to_offset(at);
                Zone {
                    tz: TimeZone::fixed(offset),
                    name: show_offset(offset),
                }
            }
        }
    }

    /// `UTC` (or `Z`), an IANA name such as `Africa/Nairobi`, or a fixed offset `+03:00`,
    /// `-0530`, `+3`.
    pub fn parse(text: &str) -> Result<Zone, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("utc") || text == "Z" {
            return Ok(Zone::utc());
        }
        if let Some(offset) = parse_offset(text) {
            let offset = offset?;
            return Ok(Zone {
                tz: TimeZone::fixed(offset),
                name: show_offset(offset),
            });
        }
        match TimeZone::get(text) {
            Ok(tz) => Ok(Zone {
                name: tz.iana_name().unwrap_or(text).to_owned(),
                tz,
            }),
            Err(_) => Err(format!(
                "{text:?} is not a time zone; give an IANA name such as Africa/Nairobi or \
                 Europe/Berlin, an offset such as +03:00, or UTC"
            )),
        }
    }

    /// The name to send and show: `UTC`, the IANA name, or `+03:00`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ms` since the epoch as ISO 8601 in this zone, to the millisecond:
    /// `2026-12-01T08:40:00.000+03:00`.
    pub fn format_ms(&self, ms: i64) -> String {
        match jiff::Timestamp::from_millisecond(ms) {
            Ok(t) => t
                .to_zoned(self.tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string(),
            // Outside years -9999..=9999: no reader could use a date anyway.
            Err(_) => ms.to_string(),
        }
    }
}

/// `Some` when `text` looks like an offset (starts with a sign): its value, or why it is
/// not one.
fn parse_offset(text: &str) -> Option<Result<Offset, String>> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let bad = || format!("{text:?} is not an offset; write it as +03:00 or -05:30");
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(hours) || !digits(minutes) {
        return Some(Err(bad()));
    }
    let (h, m): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if h > 18 || m > 59 {
        return Some(Err(bad()));
    }
    Some(Offset::from_seconds(sign * (h * 3600 + m * 60)).map_err(|_| bad()))
}

fn show_offset(offset: Offset) -> String {
    let s = offset.seconds();
    let sign = if s < 0 { '-' } else { '+' };
    let s = s.unsigned_abs();
    format!("{sign}{:02}:{:02}", s / 3600, s / 60 % 60)
}

#[cfg(test)]
mod tests {
    use super::Zone;

    // 2026-12-01T05:40:00.250Z
    const T: i64 = 1_796_103_600_250;

    #[test]
    fn instants_are_written_in_the_zone_asked_for() {
        assert_eq!(Zone::utc().format_ms(T), "2026-12-01T05:40:00.250+00:00");
        let nairobi = Zone::parse("Africa/Nairobi").expect("zone");
        assert_eq!(nairobi.name(), "Africa/Nairobi");
        assert_eq!(nairobi.format_ms(T), "2026-12-01T08:40:00.250+03:00");
        // Daylight saving follows the zone's rules: winter and summer in Berlin.
        let berlin = Zone::parse("Europe/Berlin").expect("zone");
        assert_eq!(berlin.format_ms(T), "2026-12-01T06:40:00.250+01:00");
        assert_eq!(
            berlin.format_ms(T - 150 * 86_400_000),
            "2026-07-04T07:40:00.250+02:00"
        );
    }

    #[test]
    fn offsets_and_utc_are_accepted_in_the_usual_spellings() {
        for (text, name) in [
            ("+03:00", "+03:00"),
            ("+0300", "+03:00"),
            ("+3", "+03:00"),
            ("-05:30", "-05:30"),
            ("utc", "UTC"),
            ("Z", "UTC"),
        ] {
            assert_eq!(Zone::parse(text).expect(text).name(), name, "{text}");
        }
        assert_eq!(
            Zone::parse("-05:30").expect("zone").format_ms(T),
            "2026-12-01T00:10:00.250-05:30"
        );
    }

    #[test]
    fn what_is_not_a_zone_says_what_to_write() {
        for text in ["Mars/Olympus", "+25:00", "+3:7x", "tomorrow", ""] {
            let e = Zone::parse(text).expect_err(text);
            assert!(e.contains("+03:00"), "{text}: {e}");
        }
    }
}
