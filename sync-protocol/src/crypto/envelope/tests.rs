//! Tamper, rotation and format tests for the envelope, and the frozen v1 ciphertext.

use std::collections::HashSet;

use super::*;
use crate::crypto::token::{from_hex, to_hex};

const ORG: &str = "6f1c2a3e-0b7d-4c1e-9a55-2d0f3b8e7a11";
const DOC: &str = "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f60";

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes([byte; 32])
}

fn change(version: u64) -> Binding<'static> {
    Binding::new(Purpose::Change, ORG, DOC, version, KeyId(3))
}

fn doc_key_binding(key_id: u32) -> Binding<'static> {
    Binding::new(Purpose::DocKey, ORG, DOC, 0, KeyId(key_id))
}

#[test]
fn seal_then_open_round_trips() {
    let k = key(1);
    for plaintext in [&b""[..], b"x", &[0xa5; 1000]] {
        let sealed = seal(&k, &change(1), plaintext).expect("seal");
        assert_eq!(sealed.ciphertext.len(), plaintext.len() + TAG_LEN);
        assert_eq!(sealed.key_id, KeyId(3));
        assert_eq!(
            open(&k, &change(1), &sealed).expect("open").as_bytes(),
            plaintext
        );
        let cipher = Cipher::new(&k).expect("cipher");
        assert_eq!(
            cipher
                .open_owned(&change(1), sealed)
                .expect("open")
                .as_bytes(),
            plaintext
        );
    }
}

#[test]
fn a_ciphertext_opens_only_where_it_belongs() {
    let k = key(1);
    let sealed = seal(&k, &change(7), b"answer: 42").expect("seal");
    let elsewhere = [
        (
            "another document",
            Binding {
                doc: "other-doc",
                ..change(7)
            },
        ),
        (
            "another organisation",
            Binding {
                org: "other-org",
                ..change(7)
            },
        ),
        ("another version", change(8)),
        (
            "another purpose",
            Binding {
                purpose: Purpose::Snapshot,
                ..change(7)
            },
        ),
        // Shifting a byte between org and doc must not produce the same associated data.
        (
            "shifted fields",
            Binding {
                org: "6f1c2a3e-0b7d-4c1e-9a55-2d0f3b8e7a110",
                doc: "d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f60",
                ..change(7)
            },
        ),
    ];
    for (what, binding) in elsewhere {
        assert_eq!(
            open(&k, &binding, &sealed).expect_err(what),
            CryptoError::Tampered,
            "{what}"
        );
    }
    assert_eq!(
        open(&key(2), &change(7), &sealed).expect_err("other key"),
        CryptoError::Tampered
    );
}

#[test]
fn a_changed_key_id_fails() {
    let k = key(1);
    let sealed = seal(&k, &change(7), b"answer").expect("seal");
    // The stored id and the caller's id disagree: caught before decrypting.
    let other_id = Binding {
        key_id: KeyId(4),
        ..change(7)
    };
    assert_eq!(
        open(&k, &other_id, &sealed).expect_err("mismatch"),
        CryptoError::KeyIdMismatch {
            expected: 4,
            found: 3
        }
    );
    // The stored id was rewritten to match: the associated data no longer does.
    let mut relabelled = sealed.clone();
    relabelled.key_id = KeyId(4);
    assert_eq!(
        open(&k, &other_id, &relabelled).expect_err("relabelled"),
        CryptoError::Tampered
    );
}

#[test]
fn data_and_keys_never_open_as_each_other() {
    let kek = key(9);
    let data = seal(&kek, &change(0), &[7; 32]).expect("seal");
    let as_key = Binding {
        purpose: Purpose::DocKey,
        ..change(0)
    };
    assert_eq!(
        unwrap_key(&kek, &as_key, &data).expect_err("data as key"),
        CryptoError::Tampered
    );

    let wrapped = wrap_key(&kek, &doc_key_binding(3), &key(5)).expect("wrap");
    let as_data = Binding {
        purpose: Purpose::Change,
        ..doc_key_binding(3)
    };
    assert_eq!(
        open(&kek, &as_data, &wrapped).expect_err("key as data"),
        CryptoError::Tampered
    );

    // And the API refuses to mix them up in the first place.
    for purpose in Purpose::ALL {
        let b = Binding {
            purpose,
            ..change(0)
        };
        assert_eq!(
            seal(&kek, &b, b"x").is_ok(),
            !purpose.wraps_key(),
            "{purpose}"
        );
        assert_eq!(
            wrap_key(&kek, &b, &key(5)).is_ok(),
            purpose.wraps_key(),
            "{purpose}"
        );
    }
}

#[test]
fn every_flipped_bit_is_detected() {
    let k = key(1);
    let sealed = seal(&k, &change(2), b"yes, 3").expect("seal");
    let bytes = sealed.to_bytes();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let outcome = Sealed::from_bytes(&flipped).and_then(|s| open(&k, &change(2), &s));
        assert!(outcome.is_err(), "bit {bit} flipped and still opened");
        // Past the header (version and key id) every flip is an authentication failure.
        if bit >= HEADER_LEN * 8 {
            assert_eq!(
                outcome.expect_err("checked"),
                CryptoError::Tampered,
                "bit {bit}"
            );
        }
    }
}

#[test]
fn nonces_never_repeat_under_one_key() {
    let cipher = Cipher::new(&key(1)).expect("cipher");
    let mut seen = HashSet::new();
    for _ in 0..20_000 {
        let sealed = cipher.seal(&change(1), b"same plaintext").expect("seal");
        assert!(seen.insert(sealed.nonce), "nonce repeated");
    }
}

#[test]
fn rewrap_rotates_the_kek_without_touching_data() {
    let (old_kek, new_kek) = (key(10), key(11));
    let doc_key = SecretKey::generate().expect("rng");
    let wrapped = wrap_key(&old_kek, &doc_key_binding(1), &doc_key).expect("wrap");
    let data: Vec<Sealed> = (0..5)
        .map(|v| seal(&doc_key, &change(v), format!("answer {v}").as_bytes()).expect("seal"))
        .collect();
    let stored: Vec<Vec<u8>> = data.iter().map(Sealed::to_bytes).collect();

    let rewrapped = rewrap(
        &old_kek,
        &doc_key_binding(1),
        &new_kek,
        &doc_key_binding(2),
        &wrapped,
    )
    .expect("rewrap");
    assert_eq!(rewrapped.key_id, KeyId(2));
    assert_eq!(
        unwrap_key(&old_kek, &doc_key_binding(2), &rewrapped).expect_err("old kek"),
        CryptoError::Tampered
    );
    let unwrapped = unwrap_key(&new_kek, &doc_key_binding(2), &rewrapped).expect("unwrap");
    assert_eq!(unwrapped, doc_key);
    for (v, bytes) in (0u64..).zip(&stored) {
        let sealed = Sealed::from_bytes(bytes).expect("parse");
        assert_eq!(&sealed.to_bytes(), bytes, "data untouched");
        let opened = open(&unwrapped, &change(v), &sealed).expect("open");
        assert_eq!(opened.as_bytes(), format!("answer {v}").as_bytes());
    }
}

#[test]
fn malformed_bytes_are_explained() {
    let cases: &[(&[u8], CryptoError)] = &[
        (b"", CryptoError::Malformed("sealed data is empty")),
        (
            &[2, 0, 0, 0, 1],
            CryptoError::UnsupportedFormat { version: 2 },
        ),
        (&[1; 32], CryptoError::Malformed("sealed data is truncated")),
    ];
    for (bytes, expected) in cases {
        assert_eq!(&Sealed::from_bytes(bytes).expect_err("malformed"), expected);
    }
    let short = Sealed {
        key_id: KeyId(3),
        nonce: [0; NONCE_LEN],
        ciphertext: vec![0; 15],
    };
    assert!(matches!(
        open(&key(1), &change(1), &short),
        Err(CryptoError::Malformed(_))
    ));
    assert!(
        Sealed::from_bytes(&[1; 33]).is_ok(),
        "33 bytes is an empty plaintext's size"
    );
}

#[test]
fn debug_shows_no_secrets() {
    let k = key(0xcd);
    let cipher = Cipher::new(&k).expect("cipher");
    let opened = open(
        &k,
        &change(1),
        &seal(&k, &change(1), b"Amina Yusuf").expect("seal"),
    )
    .expect("open");
    let shown = format!("{k:?} {cipher:?} {opened:?}");
    assert_eq!(shown, "SecretKey(***) Cipher(***) Opened(<11 bytes>)");
}

#[test]
fn associated_data_is_length_prefixed() {
    let ad = Binding::new(Purpose::Change, "ab", "c", 1, KeyId(2)).associated_data();
    let mut expected = b"fieldsync/aead/v1".to_vec();
    expected.extend_from_slice(&[0, 0, 0, 6]);
    expected.extend_from_slice(b"change");
    expected.extend_from_slice(&[0, 0, 0, 2]);
    expected.extend_from_slice(b"ab");
    expected.extend_from_slice(&[0, 0, 0, 1]);
    expected.extend_from_slice(b"c");
    expected.extend_from_slice(&1u64.to_be_bytes());
    expected.extend_from_slice(&2u32.to_be_bytes());
    assert_eq!(ad, expected);
    assert_ne!(
        ad,
        Binding::new(Purpose::Change, "a", "bc", 1, KeyId(2)).associated_data()
    );
}

#[test]
fn long_identifiers_use_the_heap_path() {
    let long = "x".repeat(AD_INLINE);
    let b = Binding::new(Purpose::Snapshot, &long, DOC, 1, KeyId(1));
    assert!(matches!(b.ad(), AdBuf::Heap(_)));
    assert!(matches!(change(1).ad(), AdBuf::Inline(..)));
    let sealed = seal(&key(1), &b, b"snapshot").expect("seal");
    assert_eq!(
        open(&key(1), &b, &sealed).expect("open").as_bytes(),
        b"snapshot"
    );
}

#[test]
fn purpose_labels_round_trip() {
    for purpose in Purpose::ALL {
        assert_eq!(Purpose::from_label(purpose.label()), Some(purpose));
    }
    assert_eq!(Purpose::from_label("Change"), None);
}

// ---- golden vector ----------------------------------------------------------------------

const GOLDEN_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/golden/ciphertext-v1.json"
);
const GOLDEN_PLAINTEXT: &str = r#"{"q_name":"Amina Yusuf","q_age":34,"q_water_source":"borehole"}"#;

/// The frozen vector: fixed key, binding and nonce (never use a fixed nonce outside tests).
fn golden_from_code() -> serde_json::Value {
    let k = SecretKey::from_bytes(std::array::from_fn(|i| i as u8));
    let binding = Binding::new(Purpose::Change, ORG, DOC, 7, KeyId(3));
    let nonce = std::array::from_fn(|i| 0xa0 + i as u8);
    let sealed = Cipher::new(&k)
        .expect("cipher")
        .seal_with_nonce(&binding, nonce, GOLDEN_PLAINTEXT.as_bytes())
        .expect("seal");
    serde_json::json!({
        "about": "fieldsync sealed payload, format v1: AES-256-GCM, associated data = \
                  \"fieldsync/aead/v1\" then u32be-length-prefixed purpose, org, doc, then u64be \
                  version, u32be key id; sealed_bytes = u8 version (1) | u32be key id | nonce | \
                  ciphertext | tag. Regenerate only for a deliberate format change: \
                  FIELDSYNC_BLESS=1 cargo test -p fieldsync-protocol --lib golden_ciphertext",
        "key_hex": to_hex(k.expose_bytes()),
        "binding": {
            "purpose": binding.purpose.label(),
            "org": binding.org,
            "doc": binding.doc,
            "version": binding.version,
            "key_id": binding.key_id.0,
        },
        "associated_data_hex": to_hex(&binding.associated_data()),
        "nonce_hex": to_hex(&sealed.nonce),
        "ciphertext_hex": to_hex(&sealed.ciphertext),
        "sealed_bytes_hex": to_hex(&sealed.to_bytes()),
        "plaintext": GOLDEN_PLAINTEXT,
    })
}

#[test]
fn golden_ciphertext_v1_still_opens() {
    if std::env::var_os("FIELDSYNC_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&golden_from_code()).expect("json") + "\n";
        std::fs::write(GOLDEN_PATH, text).expect("write golden file");
    }
    let text = std::fs::read_to_string(GOLDEN_PATH)
        .unwrap_or_else(|e| panic!("cannot read {GOLDEN_PATH}: {e}"));
    let g: serde_json::Value = serde_json::from_str(&text).expect("golden json");
    let field = |name: &str| g[name].as_str().unwrap_or_else(|| panic!("missing {name}"));
    let b = &g["binding"];

    let k = SecretKey::from_slice(&from_hex(field("key_hex"))).expect("key");
    let binding = Binding::new(
        Purpose::from_label(b["purpose"].as_str().expect("purpose")).expect("known purpose"),
        b["org"].as_str().expect("org"),
        b["doc"].as_str().expect("doc"),
        b["version"].as_u64().expect("version"),
        KeyId(u32::try_from(b["key_id"].as_u64().expect("key_id")).expect("u32 key id")),
    );
    assert_eq!(
        to_hex(&binding.associated_data()),
        field("associated_data_hex")
    );

    let nonce: [u8; NONCE_LEN] = from_hex(field("nonce_hex"))
        .try_into()
        .expect("12-byte nonce");
    let sealed = Sealed {
        key_id: binding.key_id,
        nonce,
        ciphertext: from_hex(field("ciphertext_hex")),
    };
    let opened = open(&k, &binding, &sealed).expect("golden ciphertext must still open");
    assert_eq!(opened.as_bytes(), field("plaintext").as_bytes());

    let bytes = from_hex(field("sealed_bytes_hex"));
    assert_eq!(sealed.to_bytes(), bytes, "byte form changed");
    assert_eq!(Sealed::from_bytes(&bytes).expect("parse"), sealed);

    // Sealing the same inputs today gives the same bytes (GCM is deterministic given the nonce),
    // and the file matches what the code would write.
    assert_eq!(
        g,
        golden_from_code(),
        "golden file differs from the code's vector"
    );
}

#[test]
fn cipher_can_be_shared_between_threads() {
    // The server caches one Cipher per document behind an Arc used by many tasks.
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cipher>();
    assert_send_sync::<SecretKey>();
}
