//! Attachments: answers that are files (image, audio, video, file, background audio), the
//! rules both sides apply to them, and the chunking they travel in.
//!
//! A media answer is the attachment's *name*: a file name the device chooses when the file is
//! attached (`[A-Za-z0-9._-]`, with an extension naming its type), unique within its
//! response. The bytes travel separately from the response's changes, in chunks of
//! [`CHUNK_SIZE`] (see [`MediaOffer`]), and are stored on both sides encrypted
//! under a data key of their own.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use crate::answer::{Answer, Answers};
use crate::cbor::Limits;
use crate::survey::types::{MediaKind, QuestionType};
use crate::survey::{Question, Survey};
use crate::wire::Message;

/// The size of every chunk but a file's last.
pub const CHUNK_SIZE: u32 = 1024 * 1024;
/// The longest attachment name.
pub const MAX_NAME: usize = 120;

/// How many chunks a file of `size` bytes travels in.
pub fn chunk_count(size: u64) -> u32 {
    size.div_ceil(u64::from(CHUNK_SIZE)) as u32
}

/// The length chunk `index` of a file of `size` bytes must have.
pub fn chunk_len(size: u64, index: u32) -> u64 {
    let start = u64::from(index) * u64::from(CHUNK_SIZE);
    size.saturating_sub(start).min(u64::from(CHUNK_SIZE))
}

/// The largest file a question of `kind` takes unless its `max-size` parameter says less.
pub fn default_limit(kind: MediaKind) -> u64 {
    const MIB: u64 = 1024 * 1024;
    match kind {
        MediaKind::Image => 25 * MIB,
        MediaKind::Audio | MediaKind::BackgroundAudio => 100 * MIB,
        MediaKind::Video => 500 * MIB,
        MediaKind::File | MediaKind::Osm => 100 * MIB,
    }
}

/// The largest file `q` takes, in bytes: its `max-size` parameter (bytes, or with a `KB`,
/// `MB` or `GB` suffix, powers of 1024) if it has one, else the default for its kind; never
/// more than the default. `None` if `q` takes no file.
pub fn limit(q: &Question) -> Option<u64> {
    let QuestionType::Media(kind) = q.qtype else {
        return None;
    };
    let default = default_limit(kind);
    Some(
        q.parameters
            .get("max-size")
            .and_then(|v| parse_size(v))
            .map_or(default, |n| n.min(default)),
    )
}

/// `max-pixels` of an image question: the longest side an image may have.
pub fn max_pixels(q: &Question) -> Option<u32> {
    match q.qtype {
        QuestionType::Media(MediaKind::Image) => q
            .parameters
            .get("max-pixels")
            .and_then(|v| v.trim().parse().ok())
            .filter(|n| *n > 0),
        _ => None,
    }
}

/// A size as written in a `max-size` parameter.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_uppercase();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let n: u64 = digits.parse().ok()?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1024,
        "M" | "MB" | "MIB" => 1024 * 1024,
        "G" | "GB" | "GIB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// A size for people: `1.5 MiB`.
pub fn show_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The media type of a file, from its extension, if fieldsync knows it.
pub fn media_type_of(file_name: &str) -> Option<&'static str> {
    let ext = file_name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "bmp" => "image/bmp",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "wav" => "audio/wav",
        "amr" => "audio/amr",
        "flac" => "audio/flac",
        "mp4" | "m4v" => "video/mp4",
        "3gp" => "video/3gpp",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "avi" => "video/x-msvideo",
        "pdf" => "application/pdf",
        "csv" => "text/csv",
        "txt" => "text/plain",
        "json" => "application/json",
        "geojson" => "application/geo+json",
        "xml" => "application/xml",
        "osm" => "application/vnd.openstreetmap.data+xml",
        "zip" => "application/zip",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => return None,
    })
}

/// Whether a file of `media_type` is an answer to a question of `kind`; if not, what the
/// question takes.
pub fn fits(kind: MediaKind, media_type: &str) -> Result<(), String> {
    let family = media_type.split('/').next().unwrap_or("");
    let (ok, wanted) = match kind {
        MediaKind::Image => (
            family == "image",
            "an image (.jpg, .png, .gif, .webp, .heic)",
        ),
        MediaKind::Audio | MediaKind::BackgroundAudio => (
            family == "audio",
            "a sound recording (.m4a, .mp3, .ogg, .opus, .wav, .amr)",
        ),
        MediaKind::Video => (family == "video", "a video (.mp4, .3gp, .mov, .webm)"),
        MediaKind::Osm => (
            media_type == "application/vnd.openstreetmap.data+xml",
            "an OpenStreetMap file (.osm)",
        ),
        MediaKind::File => (true, "a file"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("takes {wanted}, not {media_type}"))
    }
}

/// Whether `name` is a well-formed attachment name; if not, why.
pub fn check_name(name: &str) -> Result<&'static str, String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "an attachment name has 1 to {MAX_NAME} characters, not {}",
            name.len()
        ));
    }
    if name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "{name:?} is not an attachment name (letters, digits, `.`, `_` and `-`, with an extension)"
        ));
    }
    media_type_of(name).ok_or_else(|| {
        format!("{name:?} has no file extension fieldsync knows (such as .jpg, .m4a, .mp4, .pdf)")
    })
}

/// Check a media answer: a well-formed name whose type the question takes.
pub fn check_answer(kind: MediaKind, name: &str) -> Result<(), String> {
    let media_type = check_name(name)?;
    fits(kind, media_type).map_err(|e| format!("{name:?}: this question {e}"))
}

/// The attachment a device names for a file it attaches: the file's own name (reduced to
/// the allowed characters) and a random tag, so two files of the same name never collide.
pub fn name_for(original: &str, tag: &str) -> Option<String> {
    let base = original.rsplit(['/', '\\']).next().unwrap_or(original);
    let (stem, ext) = base.rsplit_once('.')?;
    media_type_of(base)?;
    let mut clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if clean.is_empty() {
        clean.push_str("file");
    }
    Some(format!("{clean}-{tag}.{}", ext.to_ascii_lowercase()))
}

/// One attachment a response references: the question (its name) and the attachment name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub question: String,
    pub name: String,
}

/// Every attachment `answers` reference, repeat entries included, in question order.
pub fn references(survey: &Survey, answers: &Answers) -> Vec<Reference> {
    let mut found = Vec::new();
    for q in survey
        .questions()
        .iter()
        .filter(|q| matches!(q.qtype, QuestionType::Media(_)))
    {
        for a in survey.answers_of(q, answers) {
            if let Answer::Text(name) = a
                && !name.is_empty()
            {
                found.push(Reference {
                    question: q.name.clone(),
                    name: name.clone(),
                });
            }
        }
    }
    found
}

/// The width and height of a PNG, JPEG, GIF or WebP image from its first bytes, if they say.
pub fn image_size(head: &[u8]) -> Option<(u32, u32)> {
    let be16 = |b: &[u8]| u32::from(u16::from_be_bytes([b[0], b[1]]));
    let le16 = |b: &[u8]| u32::from(u16::from_le_bytes([b[0], b[1]]));
    if head.starts_with(b"\x89PNG\r\n\x1a\n") && head.len() >= 24 {
        let w = u32::from_be_bytes(head[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(head[20..24].try_into().ok()?);
        return Some((w, h));
    }
    if (head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a")) && head.len() >= 10 {
        return Some((le16(&head[6..8]), le16(&head[8..10])));
    }
    if head.len() >= 30 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return match &head[12..16] {
            b"VP8X" => {
                let w = 1 + u32::from_le_bytes([head[24], head[25], head[26], 0]);
                let h = 1 + u32::from_le_bytes([head[27], head[28], head[29], 0]);
                Some((w, h))
            }
            b"VP8 " => Some((le16(&head[26..28]) & 0x3fff, le16(&head[28..30]) & 0x3fff)),
            b"VP8L" => {
                let b = u32::from_le_bytes(head[21..25].try_into().ok()?);
                Some(((b & 0x3fff) + 1, ((b >> 14) & 0x3fff) + 1))
            }
            _ => None,
        };
    }
    if head.starts_with(&[0xff, 0xd8]) {
        // Walk the markers to the first start-of-frame.
        let mut i = 2;
        while i + 9 < head.len() {
            if head[i] != 0xff {
                return None;
            }
            let marker = head[i + 1];
            if marker == 0xff {
                i += 1;
                continue;
            }
            let len = be16(&head[i + 2..i + 4]) as usize;
            let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
            if sof {
                return Some((be16(&head[i + 7..i + 9]), be16(&head[i + 5..i + 7])));
            }
            i += 2 + len;
        }
    }
    None
}

// --- the upload messages (CBOR, on `/v1/sync/media/…`) ---
//
// A device offers each attachment of a response the server has acknowledged
// (`POST /v1/sync/media/offer`); the server answers with what it already holds
// ([`MediaStatus`]), so an upload cut at any point resumes at the first chunk the server has
// not stored, and a file the organisation already holds (the same bytes, attached again) is
// not sent at all. Chunks go in order (`POST /v1/sync/media/chunk`), each with its SHA-256;
// the server checks it before storing, and checks the whole file's SHA-256 (declared in the
// offer) before it counts the attachment as stored. Sending a stored chunk again is harmless.

/// An attachment a device is about to send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaOffer {
    pub protocol: u16,
    /// The response that references it (already pushed).
    pub doc_id: Uuid,
    /// The attachment name, as the answer holds it.
    pub name: String,
    /// The question it answers.
    pub question: String,
    pub media_type: String,
    pub size: u64,
    /// SHA-256 of the whole file.
    pub sha256: ByteBuf,
}

/// One chunk of an offered attachment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaChunk {
    pub protocol: u16,
    pub doc_id: Uuid,
    pub name: String,
    /// Which chunk, from 0; every chunk but the last is [`CHUNK_SIZE`] bytes.
    pub index: u32,
    /// SHA-256 of `bytes`.
    pub sha256: ByteBuf,
    pub bytes: ByteBuf,
}

/// What the server holds of an attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStatus {
    pub protocol: u16,
    pub name: String,
    pub chunk_size: u32,
    /// How many chunks the file has.
    pub chunks: u32,
    /// How many (from the first) the server has stored: the next to send.
    pub received: u32,
    /// Stored whole and checked.
    pub complete: bool,
}

crate::wire::message!(MediaOffer, MediaStatus);

impl Message for MediaChunk {
    /// One chunk and a few small fields.
    const LIMITS: Limits = Limits {
        max_bytes: CHUNK_SIZE as usize + 4096,
        max_depth: 4,
        max_items: 64,
    };

    fn protocol(&self) -> u16 {
        self.protocol
    }

    fn set_protocol(&mut self, version: u16) {
        self.protocol = version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_a_file_exactly() {
        let c = u64::from(CHUNK_SIZE);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(c), 1);
        assert_eq!(chunk_count(c + 1), 2);
        assert_eq!(chunk_len(c + 1, 0), c);
        assert_eq!(chunk_len(c + 1, 1), 1);
        assert_eq!(chunk_len(c + 1, 2), 0);
    }

    #[test]
    fn names_sizes_and_types() {
        assert_eq!(
            name_for("/tmp/My house (1).JPG", "a1b2").as_deref(),
            Some("My_house__1_-a1b2.jpg")
        );
        assert_eq!(name_for("notes", "a1"), None);
        assert_eq!(name_for("x.exe", "a1"), None);
        assert!(check_name("house-a1.jpg").is_ok());
        assert!(check_name("../etc/passwd.txt").is_err());
        assert!(check_name(".hidden.jpg").is_err());
        assert!(check_answer(MediaKind::Image, "voice-1.m4a").is_err());
        assert!(check_answer(MediaKind::Audio, "voice-1.m4a").is_ok());
        assert!(check_answer(MediaKind::File, "report-1.pdf").is_ok());
        assert_eq!(parse_size("10MB"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size(" 512 kb"), Some(512 * 1024));
        assert_eq!(parse_size("2000"), Some(2000));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(show_size(1536 * 1024), "1.5 MiB");
        assert_eq!(show_size(12), "12 bytes");
    }

    #[test]
    fn image_sizes_are_read_from_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(image_size(&png), Some((640, 480)));
        let gif = b"GIF89a\x20\x03\x58\x02rest";
        assert_eq!(image_size(gif), Some((800, 600)));
        // JPEG: SOI, an APP0 segment of 16 bytes, then SOF0 with height 1200, width 1600.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        jpeg.extend_from_slice(&[0u8; 14]);
        jpeg.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08, 0x04, 0xb0, 0x06, 0x40, 0x03]);
        assert_eq!(image_size(&jpeg), Some((1600, 1200)));
        assert_eq!(image_size(b"not an image at all, really"), None);
    }
}
