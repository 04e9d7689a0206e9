//! The `type` cell of a survey row: every XLSForm type and its old spellings, read into what
//! the row is. Unknown types are refused with the list of known ones.

use std::fmt;

/// Where a select question's choices come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChoiceSource {
    /// A list of the `choices` sheet.
    List(String),
    /// A file attached to the form (`.csv`, `.xml`, `.geojson`).
    File(String),
    /// A list of the `external_choices` sheet (`select_one_external`).
    External(String),
}

impl ChoiceSource {
    /// The list or file name.
    pub fn name(&self) -> &str {
        match self {
            ChoiceSource::List(n) | ChoiceSource::File(n) | ChoiceSource::External(n) => n,
        }
    }
}

/// A select question's choices and whether it offers "other".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Select {
    pub source: ChoiceSource,
    /// `or_other`: an "Other" choice whose text answer goes in `NAME_other`.
    pub or_other: bool,
}

/// Files a question's answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    File,
    BackgroundAudio,
    /// An OpenStreetMap feature file (`osm TAGS`).
    Osm,
}

/// Values filled in by the device, not asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaKind {
    Start,
    End,
    Today,
    DeviceId,
    SubscriberId,
    SimSerial,
    PhoneNumber,
    Username,
    Email,
    Audit,
    StartGeopoint,
    BackgroundGeopoint,
}

/// What kind of answer a question takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuestionType {
    Text,
    Integer,
    Decimal,
    /// A number on a slider; bounds and step are in `parameters`.
    Range,
    SelectOne(Select),
    SelectMultiple(Select),
    /// Every choice of the list, in the order the respondent puts them.
    Rank(String),
    /// Text shown; takes no answer.
    Note,
    /// A confirmation: the answer is `OK`.
    Acknowledge,
    /// Like acknowledge.
    Trigger,
    /// `YYYY-MM-DD`.
    Date,
    /// `HH:MM[:SS[.sss]][offset]`.
    Time,
    /// RFC 3339.
    DateTime,
    /// `lat lon [alt [accuracy]]`.
    GeoPoint,
    /// Points separated by `;`.
    GeoTrace,
    /// A closed geotrace.
    GeoShape,
    /// Scanned or typed code.
    Barcode,
    /// An attachment.
    Media(MediaKind),
    /// A value computed from the `calculation`; not shown.
    Calculate,
    /// A stored value not shown (a default).
    Hidden,
    /// A value the device fills in.
    Meta(MetaKind),
}

/// What a survey row is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowType {
    BeginGroup,
    EndGroup,
    BeginRepeat,
    EndRepeat,
    Question(QuestionType),
    /// `csv-external` / `xml-external`: declares a file the form's expressions read.
    External {
        csv: bool,
    },
}

/// Why a type cell is not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeError {
    /// Not an XLSForm type.
    Unknown(String),
    /// A select without its list: `select_one` alone.
    MissingList(String),
    /// `select_multiple_from_file` with a file that is not CSV, XML or GeoJSON.
    BadFile(String),
    /// `begin loop over LIST`: the old, unsupported looped group.
    Loop,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeError::Unknown(t) => write!(
                f,
                "unknown type `{t}`; XLSForm's types are text, integer, decimal, range, \
                 select_one LIST, select_multiple LIST (with or_other), select_one_from_file \
                 FILE, select_multiple_from_file FILE, select_one_external LIST, rank LIST, note, \
                 acknowledge, trigger, date, time, dateTime, geopoint, geotrace, geoshape, \
                 barcode, image, audio, video, file, background-audio, calculate, hidden, \
                 begin_group, end_group, begin_repeat, end_repeat, and the metadata start, end, \
                 today, deviceid, subscriberid, simserial, phonenumber, username, email, audit, \
                 start-geopoint"
            ),
            TypeError::MissingList(t) => write!(
                f,
                "`{t}` needs the name of its choice list after it, as in `{t} yes_no`"
            ),
            TypeError::BadFile(file) => write!(
                f,
                "`{file}` is not a choice file; select_one_from_file and \
                 select_multiple_from_file take a .csv, .xml or .geojson file"
            ),
            TypeError::Loop => f.write_str(
                "`begin loop over` is not supported (pyxform's old looped group); use a \
                 `begin_repeat` with a `repeat_count`",
            ),
        }
    }
}

fn simple(t: &str) -> Option<QuestionType> {
    use QuestionType as Q;
    Some(match t {
        "text" | "string" | "add text prompt" => Q::Text,
        "integer" | "int" | "add integer prompt" => Q::Integer,
        "decimal" | "add decimal prompt" => Q::Decimal,
        "range" => Q::Range,
        "note" | "add note prompt" => Q::Note,
        "acknowledge" | "add acknowledge prompt" => Q::Acknowledge,
        "trigger" => Q::Trigger,
        "date" | "add date prompt" => Q::Date,
        "time" => Q::Time,
        "datetime" | "dateTime" | "add dateTime prompt" | "add datetime prompt" => Q::DateTime,
        "geopoint" | "gps" | "location" | "add location prompt" => Q::GeoPoint,
        "geotrace" => Q::GeoTrace,
        "geoshape" => Q::GeoShape,
        "barcode" | "add barcode prompt" => Q::Barcode,
        "image" | "photo" | "add image prompt" | "add photo prompt" => Q::Media(MediaKind::Image),
        "audio" | "add audio prompt" => Q::Media(MediaKind::Audio),
        "video" | "add video prompt" => Q::Media(MediaKind::Video),
        "file" | "add file prompt" => Q::Media(MediaKind::File),
        "background-audio" => Q::Media(MediaKind::BackgroundAudio),
        "calculate" | "add calculate prompt" => Q::Calculate,
        "hidden" => Q::Hidden,
        "start" | "starttime" | "get start time" => Q::Meta(MetaKind::Start),
        "end" | "endtime" | "get end time" => Q::Meta(MetaKind::End),
        "today" | "get today" => Q::Meta(MetaKind::Today),
        "deviceid" | "imei" | "get device id" | "uri:deviceid" => Q::Meta(MetaKind::DeviceId),
        "subscriberid" | "get subscriber id" | "uri:subscriberid" => {
            Q::Meta(MetaKind::SubscriberId)
        }
        "simserial" | "get sim id" | "simid" | "uri:simserial" => Q::Meta(MetaKind::SimSerial),
        "phonenumber" | "phone number" | "get phone number" | "uri:phonenumber" => {
            Q::Meta(MetaKind::PhoneNumber)
        }
        "username" | "uri:username" => Q::Meta(MetaKind::Username),
        "email" | "uri:email" => Q::Meta(MetaKind::Email),
        "audit" => Q::Meta(MetaKind::Audit),
        "start-geopoint" => Q::Meta(MetaKind::StartGeopoint),
        "background-geopoint" => Q::Meta(MetaKind::BackgroundGeopoint),
        _ => return None,
    })
}

const FILE_EXTENSIONS: [&str; 3] = [".csv", ".xml", ".geojson"];

/// Reads a `type` cell. Spacing is free (`select one`, `begin group`); case matters, as in
/// XLSForm (`dateTime` and `datetime` are both spellings of one type, `Text` is not a type).
pub fn parse_type(cell: &str) -> Result<RowType, TypeError> {
    let words: Vec<&str> = cell.split_whitespace().collect();
    let joined = words.join(" ");
    // `begin group NAME` and `begin_group`: the kind is the first one or two words; a word
    // after it is ignored, as XLSForm does.
    let (head, rest): (String, &[&str]) = match words.as_slice() {
        [w, rest @ ..] if w.contains('_') => ((*w).to_owned(), rest),
        [a, b, rest @ ..] => (format!("{a}_{b}"), rest),
        [w] => ((*w).to_owned(), &[]),
        [] => (String::new(), &[]),
    };
    let structure = match head.as_str() {
        "begin_group" | "begin_lgroup" => Some(RowType::BeginGroup),
        "end_group" | "end_lgroup" => Some(RowType::EndGroup),
        "begin_repeat" | "begin_looped_group" => Some(RowType::BeginRepeat),
        "end_repeat" | "end_looped_group" | "end_loop" => Some(RowType::EndRepeat),
        _ => None,
    };
    if let Some(t) = structure {
        let ends = matches!(t, RowType::EndGroup | RowType::EndRepeat);
        if rest.len() <= usize::from(!ends) {
            return Ok(t);
        }
    }
    if let [osm, _tags] = words.as_slice()
        && *osm == "osm"
    {
        return Ok(RowType::Question(QuestionType::Media(MediaKind::Osm)));
    }
    if head == "begin_loop" {
        return Err(TypeError::Loop);
    }
    match joined.as_str() {
        "csv-external" => return Ok(RowType::External { csv: true }),
        "xml-external" => return Ok(RowType::External { csv: false }),
        _ => {}
    }
    if let Some(q) = simple(&joined) {
        return Ok(RowType::Question(q));
    }
    // Selects: `select_one LIST [or_other]` and their old spellings, case as written.
    let selects: [(&str, u8); 14] = [
        ("select_one_from_file", 3),
        ("select_multiple_from_file", 4),
        ("select one from file", 3),
        ("select multiple from file", 4),
        ("select_one_external", 5),
        ("select_one", 1),
        ("select_multiple", 2),
        ("select one", 1),
        ("select multiple", 2),
        ("select1", 1),
        ("select all that apply", 2),
        ("select one from", 1),
        ("select all that apply from", 2),
        ("rank", 6),
    ];
    for (prefix, kind) in selects {
        let Some(after) = joined.strip_prefix(prefix) else {
            continue;
        };
        if !(after.is_empty() || after.starts_with(' ')) {
            continue;
        }
        let args: Vec<&str> = after.split_whitespace().collect();
        let Some((&list, tail)) = args.split_first() else {
            return Err(TypeError::MissingList(prefix.to_owned()));
        };
        let or_other = match tail.join(" ").as_str() {
            "" => false,
            "or_other" | "or other" | "or specify other" => true,
            _ => continue,
        };
        if or_other && !matches!(kind, 1 | 2) {
            return Err(TypeError::Unknown(joined));
        }
        let list = list.to_owned();
        let is_file = FILE_EXTENSIONS
            .iter()
            .any(|e| list.to_lowercase().ends_with(e));
        let source = |kind: u8, list: String| -> Result<ChoiceSource, TypeError> {
            match kind {
                3 | 4 if is_file => Ok(ChoiceSource::File(list)),
                3 | 4 => Err(TypeError::BadFile(list)),
                5 => Ok(ChoiceSource::External(list)),
                // `select_one places.csv` reads the file too.
                _ if is_file => Ok(ChoiceSource::File(list)),
                _ => Ok(ChoiceSource::List(list)),
            }
        };
        let select = |kind, list| -> Result<Select, TypeError> {
            Ok(Select {
                source: source(kind, list)?,
                or_other,
            })
        };
        return Ok(RowType::Question(match kind {
            1 | 3 | 5 => QuestionType::SelectOne(select(kind, list)?),
            2 | 4 => QuestionType::SelectMultiple(select(kind, list)?),
            _ => QuestionType::Rank(list),
        }));
    }
    Err(TypeError::Unknown(joined))
}

impl QuestionType {
    /// The choice list of a select or rank question on the `choices` sheet.
    pub fn list(&self) -> Option<&str> {
        match self {
            QuestionType::SelectOne(s) | QuestionType::SelectMultiple(s) => match &s.source {
                ChoiceSource::List(l) => Some(l),
                _ => None,
            },
            QuestionType::Rank(l) => Some(l),
            _ => None,
        }
    }

    /// The select of a select question.
    pub fn select(&self) -> Option<&Select> {
        match self {
            QuestionType::SelectOne(s) | QuestionType::SelectMultiple(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the question is shown and answered by the enumerator (not a note, not
    /// computed, not filled in by the device).
    pub fn is_asked(&self) -> bool {
        !matches!(
            self,
            QuestionType::Note
                | QuestionType::Calculate
                | QuestionType::Hidden
                | QuestionType::Meta(_)
        )
    }

    /// Whether the question holds a value in the response (everything but notes).
    pub fn holds_value(&self) -> bool {
        *self != QuestionType::Note
    }
}

impl fmt::Display for QuestionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use QuestionType as Q;
        let select = |f: &mut fmt::Formatter<'_>, kind: &str, s: &Select| {
            match &s.source {
                ChoiceSource::List(l) => write!(f, "{kind} {l}")?,
                ChoiceSource::File(file) => write!(f, "{kind}_from_file {file}")?,
                ChoiceSource::External(l) => write!(f, "{kind}_external {l}")?,
            }
            if s.or_other {
                f.write_str(" or_other")?;
            }
            Ok(())
        };
        match self {
            Q::Text => f.write_str("text"),
            Q::Integer => f.write_str("integer"),
            Q::Decimal => f.write_str("decimal"),
            Q::Range => f.write_str("range"),
            Q::SelectOne(s) => select(f, "select_one", s),
            Q::SelectMultiple(s) => select(f, "select_multiple", s),
            Q::Rank(l) => write!(f, "rank {l}"),
            Q::Note => f.write_str("note"),
            Q::Acknowledge => f.write_str("acknowledge"),
            Q::Trigger => f.write_str("trigger"),
            Q::Date => f.write_str("date"),
            Q::Time => f.write_str("time"),
            Q::DateTime => f.write_str("dateTime"),
            Q::GeoPoint => f.write_str("geopoint"),
            Q::GeoTrace => f.write_str("geotrace"),
            Q::GeoShape => f.write_str("geoshape"),
            Q::Barcode => f.write_str("barcode"),
            Q::Media(m) => f.write_str(match m {
                MediaKind::Image => "image",
                MediaKind::Audio => "audio",
                MediaKind::Video => "video",
                MediaKind::File => "file",
                MediaKind::BackgroundAudio => "background-audio",
                MediaKind::Osm => "osm",
            }),
            Q::Calculate => f.write_str("calculate"),
            Q::Hidden => f.write_str("hidden"),
            Q::Meta(m) => f.write_str(match m {
                MetaKind::Start => "start",
                MetaKind::End => "end",
                MetaKind::Today => "today",
                MetaKind::DeviceId => "deviceid",
                MetaKind::SubscriberId => "subscriberid",
                MetaKind::SimSerial => "simserial",
                MetaKind::PhoneNumber => "phonenumber",
                MetaKind::Username => "username",
                MetaKind::Email => "email",
                MetaKind::Audit => "audit",
                MetaKind::StartGeopoint => "start-geopoint",
                MetaKind::BackgroundGeopoint => "background-geopoint",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(t: &str) -> QuestionType {
        match parse_type(t) {
            Ok(RowType::Question(q)) => q,
            other => panic!("{t}: {other:?}"),
        }
    }

    #[test]
    fn spellings_of_structure_rows() {
        for (t, want) in [
            ("begin group", RowType::BeginGroup),
            ("begin_group", RowType::BeginGroup),
            ("begin group household", RowType::BeginGroup),
            ("end  group", RowType::EndGroup),
            ("begin repeat", RowType::BeginRepeat),
            ("end_repeat", RowType::EndRepeat),
            ("csv-external", RowType::External { csv: true }),
        ] {
            assert_eq!(parse_type(t), Ok(want), "{t}");
        }
        assert_eq!(parse_type("begin loop over fruits"), Err(TypeError::Loop));
        // Types are case-sensitive, as in XLSForm.
        assert!(matches!(
            parse_type("Begin Group"),
            Err(TypeError::Unknown(_))
        ));
        assert!(matches!(parse_type("Text"), Err(TypeError::Unknown(_))));
    }

    #[test]
    fn selects_keep_list_case_and_or_other() {
        let s = |list: &str, or_other| Select {
            source: ChoiceSource::List(list.to_owned()),
            or_other,
        };
        assert_eq!(
            q("select_one YesNo"),
            QuestionType::SelectOne(s("YesNo", false))
        );
        assert_eq!(
            q("select one yes_no"),
            QuestionType::SelectOne(s("yes_no", false))
        );
        assert_eq!(
            q("select_multiple fruits or_other"),
            QuestionType::SelectMultiple(s("fruits", true))
        );
        assert_eq!(
            q("select all that apply fruits"),
            QuestionType::SelectMultiple(s("fruits", false))
        );
        assert_eq!(
            q("select_one_from_file villages.csv"),
            QuestionType::SelectOne(Select {
                source: ChoiceSource::File("villages.csv".into()),
                or_other: false
            })
        );
        assert_eq!(
            parse_type("select_one_from_file villages"),
            Err(TypeError::BadFile("villages".into()))
        );
        assert_eq!(
            q("select_one_external cities"),
            QuestionType::SelectOne(Select {
                source: ChoiceSource::External("cities".into()),
                or_other: false
            })
        );
        assert_eq!(q("rank colours"), QuestionType::Rank("colours".into()));
        assert_eq!(
            q("select_one places.geojson"),
            QuestionType::SelectOne(Select {
                source: ChoiceSource::File("places.geojson".into()),
                or_other: false
            })
        );
        assert_eq!(
            parse_type("select_one"),
            Err(TypeError::MissingList("select_one".into()))
        );
    }

    #[test]
    fn every_simple_type_and_alias() {
        assert_eq!(q("text"), QuestionType::Text);
        assert_eq!(q("int"), QuestionType::Integer);
        assert_eq!(q("dateTime"), QuestionType::DateTime);
        assert_eq!(q("datetime"), QuestionType::DateTime);
        assert_eq!(q("gps"), QuestionType::GeoPoint);
        assert_eq!(q("photo"), QuestionType::Media(MediaKind::Image));
        assert_eq!(q("imei"), QuestionType::Meta(MetaKind::DeviceId));
        assert_eq!(
            q("start-geopoint"),
            QuestionType::Meta(MetaKind::StartGeopoint)
        );
        assert_eq!(
            q("background-audio"),
            QuestionType::Media(MediaKind::BackgroundAudio)
        );
        assert!(matches!(parse_type("txt"), Err(TypeError::Unknown(t)) if t == "txt"));
    }

    #[test]
    fn display_round_trips() {
        for t in [
            "text",
            "select_one yn",
            "select_multiple f or_other",
            "select_one_from_file a.csv",
            "rank c",
            "dateTime",
            "background-audio",
            "start-geopoint",
        ] {
            assert_eq!(q(t).to_string(), t);
        }
    }
}
