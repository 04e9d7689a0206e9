//! Bounded CBOR encoding and decoding, so that untrusted bytes can never make a peer allocate
//! without limit, recurse without limit or panic.
//!
//! Decoding is two passes. A structural scan walks every CBOR header with `ciborium-ll` and
//! checks it against [`Limits`] before serde sees anything: total size, nesting depth, item
//! count, and every declared length (a byte string, text, array or map can never claim more
//! items than there are bytes left). Indefinite lengths and tags are refused: fieldsync never
//! writes them, so a message that holds one did not come from a fieldsync peer. Only a message
//! that passes the scan is handed to `ciborium`, with the same recursion limit.

use ciborium_ll::{Decoder, Header};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bounds applied to one decoded message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of arrays and maps.
    pub max_depth: usize,
    /// Most CBOR items (headers) in one message.
    pub max_items: usize,
}

impl Limits {
    /// The limits for sync messages: 32 MiB, 16 levels, 4 million items.
    pub const SYNC: Limits = Limits {
        max_bytes: 32 * 1024 * 1024,
        max_depth: 16,
        max_items: 4 * 1024 * 1024,
    };
}

impl Limits {
    /// The limits for a push: as [`Limits::SYNC`], but with far fewer items, because each
    /// decoded change costs memory beyond its bytes (4 million one-byte changes in 8 MiB
    /// would take hundreds of MiB): 256 Ki items hold a push of 5,000 documents with tens of
    /// changes each.
    pub const PUSH: Limits = Limits {
        max_bytes: 32 * 1024 * 1024,
        max_depth: 16,
        max_items: 256 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::SYNC
    }
}

/// Why a message could not be decoded. Every variant says what a sender should change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("message is {size} bytes, more than the limit of {limit}; send smaller batches")]
    TooLarge { size: usize, limit: usize },
    #[error("message nests deeper than {limit} levels at byte {offset}")]
    TooDeep { limit: usize, offset: usize },
    #[error("message holds more than {limit} items")]
    TooManyItems { limit: usize },
    #[error("item at byte {offset} declares {declared} entries but only {left} bytes remain")]
    LengthBeyondEnd {
        offset: usize,
        declared: u64,
        left: usize,
    },
    #[error(
        "indefinite-length item at byte {offset}; fieldsync messages use definite lengths only"
    )]
    Indefinite { offset: usize },
    #[error("tagged item at byte {offset}; fieldsync messages carry no CBOR tags")]
    Tagged { offset: usize },
    #[error("message is truncated or not CBOR at byte {offset}")]
    Syntax { offset: usize },
    #[error("message ends before its last item is complete")]
    Truncated,
    #[error("{extra} unexpected bytes after the end of the message")]
    TrailingBytes { extra: usize },
    #[error("message does not match the expected shape: {0}")]
    Shape(String),
}

/// A value could not be encoded; only a type whose `Serialize` refuses itself gets here.
#[derive(Debug, thiserror::Error)]
#[error("could not encode message as CBOR: {0}")]
pub struct EncodeError(String);

/// Encode a message as CBOR.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    ciborium::into_writer(value, &mut out).map_err(|e| EncodeError(e.to_string()))?;
    Ok(out)
}

/// Decode one untrusted message within `limits`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limits: &Limits) -> Result<T, DecodeError> {
    scan(bytes, limits)?;
    // The scan bounded depth; ciborium's own recursion limit is a second fence with the same
    // value (it counts one level more for the outermost item).
    ciborium::de::from_reader_with_recursion_limit(bytes, limits.max_depth + 1).map_err(|err| {
        match err {
            ciborium::de::Error::Io(_) => DecodeError::Truncated,
            ciborium::de::Error::Syntax(offset) => DecodeError::Syntax { offset },
            ciborium::de::Error::Semantic(_, msg) => DecodeError::Shape(msg),
            ciborium::de::Error::RecursionLimitExceeded => DecodeError::TooDeep {
                limit: limits.max_depth,
                offset: 0,
            },
        }
    })
}

/// Walk the structure of `bytes` and check it against `limits` without building any value.
pub fn scan(bytes: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let total = bytes.len();
    let mut dec = Decoder::from(bytes);
    // Each entry is the number of items still expected in an open array or map.
    let mut open: Vec<u64> = Vec::new();
    let mut items = 0usize;
    let mut scratch = [0u8; 1024];
    loop {
        let offset = dec.offset();
        let header = match dec.pull() {
            Ok(h) => h,
            Err(ciborium_ll::Error::Io(_)) => return Err(DecodeError::Truncated),
            Err(ciborium_ll::Error::Syntax(offset)) => return Err(DecodeError::Syntax { offset }),
        };
        items += 1;
        if items > limits.max_items {
            return Err(DecodeError::TooManyItems {
                limit: limits.max_items,
            });
        }
        let left = total.saturating_sub(dec.offset());
        let check_len = |declared: u64, per_item: u64| -> Result<(), DecodeError> {
            // Every entry occupies at least `per_item` bytes, so a declared count beyond what is
            // left is a lie we refuse before anything is allocated for it.
            if declared.saturating_mul(per_item) > left as u64 {
                Err(DecodeError::LengthBeyondEnd {
                    offset,
                    declared,
                    left,
                })
            } else {
                Ok(())
            }
        };
        let mut children = 0u64;
        match header {
            Header::Positive(_) | Header::Negative(_) | Header::Float(_) | Header::Simple(_) => {}
            Header::Tag(_) => return Err(DecodeError::Tagged { offset }),
            Header::Break
            | Header::Bytes(None)
            | Header::Text(None)
            | Header::Array(None)
            | Header::Map(None) => return Err(DecodeError::Indefinite { offset }),
            Header::Bytes(Some(len)) => {
                check_len(len as u64, 1)?;
                let mut segments = dec.bytes(Some(len));
                while let Some(mut seg) = segments.pull().map_err(ll_error)? {
                    while seg.pull(&mut scratch).map_err(ll_error)?.is_some() {}
                }
            }
            Header::Text(Some(len)) => {
                check_len(len as u64, 1)?;
                let mut segments = dec.text(Some(len));
                while let Some(mut seg) = segments.pull().map_err(ll_error)? {
                    while seg.pull(&mut scratch).map_err(ll_error)?.is_some() {}
                }
            }
            Header::Array(Some(len)) => {
                check_len(len as u64, 1)?;
                children = len as u64;
            }
            Header::Map(Some(len)) => {
                check_len(len as u64, 2)?;
                children = (len as u64).saturating_mul(2);
            }
        }
        // This item fills one slot of its parent.
        if let Some(parent) = open.last_mut() {
            *parent -= 1;
        }
        if children > 0 {
            if open.len() >= limits.max_depth {
                return Err(DecodeError::TooDeep {
                    limit: limits.max_depth,
                    offset,
                });
            }
            open.push(children);
        }
        while open.last() == Some(&0) {
            open.pop();
        }
        if open.is_empty() {
            break;
        }
    }
    let end = dec.offset();
    if end != total {
        return Err(DecodeError::TrailingBytes { extra: total - end });
    }
    Ok(())
}

fn ll_error<E>(err: ciborium_ll::Error<E>) -> DecodeError {
    match err {
        ciborium_ll::Error::Io(_) => DecodeError::Truncated,
        ciborium_ll::Error::Syntax(offset) => DecodeError::Syntax { offset },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        list: Vec<u32>,
    }

    fn sample() -> Sample {
        Sample {
            name: "household".into(),
            data: vec![1, 2, 3, 4],
            list: vec![7, 8, 9],
        }
    }

    fn small() -> Limits {
        Limits {
            max_bytes: 1024,
            max_depth: 4,
            max_items: 100,
        }
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample()).expect("encodes");
        let back: Sample = decode(&bytes, &small()).expect("decodes");
        assert_eq!(back, sample());
    }

    /// One case: raw bytes and the error variant they must produce.
    fn check(bytes: &[u8], expected: fn(&DecodeError) -> bool) {
        let got = decode::<Sample>(bytes, &small());
        match got {
            Err(ref e) if expected(e) => {}
            other => panic!("bytes {bytes:02x?}: unexpected result {other:?}"),
        }
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let good = encode(&sample()).expect("encodes");
        // Every truncation of a valid message is refused.
        for cut in 0..good.len() {
            let r = decode::<Sample>(&good[..cut], &small());
            assert!(r.is_err(), "truncated at {cut} decoded");
        }
        check(&[], |e| matches!(e, DecodeError::Truncated));
        // A byte string claiming 2^60 bytes.
        check(&[0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0, 1], |e| {
            matches!(e, DecodeError::LengthBeyondEnd { .. })
        });
        // An array claiming 4 billion items.
        check(&[0x9a, 0xff, 0xff, 0xff, 0xff, 0x00], |e| {
            matches!(e, DecodeError::LengthBeyondEnd { .. })
        });
        // A map claiming more pairs than bytes.
        check(&[0xa3, 0x01, 0x02], |e| {
            matches!(e, DecodeError::LengthBeyondEnd { .. })
        });
        // Text claiming 1 GiB.
        check(&[0x7a, 0x40, 0, 0, 0, b'a'], |e| {
            matches!(e, DecodeError::LengthBeyondEnd { .. })
        });
        // Indefinite-length array, a tag, a lone break.
        check(&[0x9f, 0x01, 0xff], |e| {
            matches!(e, DecodeError::Indefinite { .. })
        });
        check(&[0xc0, 0x01], |e| matches!(e, DecodeError::Tagged { .. }));
        check(&[0xff], |e| matches!(e, DecodeError::Indefinite { .. }));
        // Reserved additional information is a syntax error.
        check(&[0x1c], |e| matches!(e, DecodeError::Syntax { .. }));
        // Valid CBOR of the wrong shape.
        check(&encode(&42u32).expect("encodes"), |e| {
            matches!(e, DecodeError::Shape(_))
        });
        // Trailing garbage after a complete message.
        let mut trailing = good.clone();
        trailing.push(0);
        check(&trailing, |e| {
            matches!(e, DecodeError::TrailingBytes { extra: 1 })
        });
    }

    #[test]
    fn deep_nesting_is_refused() {
        // 10,000 nested one-element arrays: would overflow a naive recursive decoder.
        let mut deep = vec![0x81u8; 10_000];
        deep.push(0x00);
        let limits = Limits {
            max_bytes: 1 << 20,
            max_depth: 16,
            max_items: 1 << 20,
        };
        let r = decode::<serde_json::Value>(&deep, &limits);
        assert!(
            matches!(r, Err(DecodeError::TooDeep { limit: 16, .. })),
            "{r:?}"
        );
        // Exactly at the limit is fine.
        let mut ok = vec![0x81u8; 15];
        ok.push(0x00);
        assert!(scan(&ok, &limits).is_ok());
    }

    #[test]
    fn size_and_item_limits() {
        let big = vec![0u8; 2048];
        let r = decode::<Sample>(&big, &small());
        assert_eq!(
            r.err(),
            Some(DecodeError::TooLarge {
                size: 2048,
                limit: 1024
            })
        );
        let many: Vec<u8> = (0..200).map(|_| 0u8).collect();
        let r = decode::<Vec<u8>>(&encode(&many).expect("encodes"), &small());
        assert!(matches!(r, Err(DecodeError::TooManyItems { limit: 100 })));
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small deterministic generator: the point is breadth, not cryptographic quality.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decode::<Sample>(&bytes, &small());
            let _ = decode::<serde_json::Value>(&bytes, &small());
        }
    }
}
