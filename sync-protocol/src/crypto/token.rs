//! Opaque credentials: random bearer tokens, the hash under which they are stored (never the
//! token itself), and the constant-time comparison used wherever a secret is checked.

use std::hint::black_box;

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use super::CryptoError;

/// Random bytes in a token: 256 bits, so tokens cannot be guessed and a plain SHA-256 of them
/// (no salt, no stretching) is a safe thing to store.
pub const TOKEN_BYTES: usize = 32;

/// A fresh bearer token: `prefix` verbatim followed by 64 lowercase hex digits, e.g.
/// `new_token("fs_dev_")` gives `fs_dev_3f…`. The prefix lets people and secret scanners
/// recognise a leaked token; it adds no strength.
pub fn new_token(prefix: &str) -> Result<String, CryptoError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| CryptoError::Rng)?;
    let mut token = String::with_capacity(prefix.len() + 2 * TOKEN_BYTES);
    token.push_str(prefix);
    push_hex(&mut token, bytes.as_ref());
    Ok(token)
}

/// Crockford's base 32: digits and capitals without I, L, O and U, so a code read aloud or
/// copied by hand is not misread.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A one-time code a person can read out over the phone: 15 base-32 characters (75 random
/// bits) in groups of five, e.g. `K7QF9-XMA2P-4TNRD`. Enough against guessing because the
/// server limits attempts and the code expires; never used for a lasting token.
pub fn new_short_code() -> Result<String, CryptoError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 15]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| CryptoError::Rng)?;
    let mut code = String::with_capacity(17);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            code.push('-');
        }
        code.push(char::from(CODE_ALPHABET[usize::from(b & 31)]));
    }
    Ok(code)
}

/// A short code as typed (any case, with or without dashes or spaces, `O` for zero and `I`
/// or `L` for one, as Crockford allows) in the form [`new_short_code`] wrote it; `None` when
/// it is not one.
pub fn canonical_code(typed: &str) -> Option<String> {
    let mut chars = Vec::with_capacity(15);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CODE_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        chars.push(c);
    }
    if chars.len() != 15 {
        return None;
    }
    let mut code = String::with_capacity(17);
    for (i, c) in chars.into_iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            code.push('-');
        }
        code.push(c);
    }
    Some(code)
}

/// SHA-256 of a token, the only form in which a token is stored: a leaked table of hashes
/// grants nothing.
pub fn token_hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// Constant-time equality for secrets of the same length (lengths themselves are not secret
/// here and are compared first).
///
/// ring's `constant_time` module is deprecated for outside use, so this is a plain
/// accumulate-the-differences loop; `black_box` keeps the optimiser from turning it back into
/// an early-exit comparison.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff = black_box(diff | (x ^ y));
    }
    diff == 0
}

/// Appends lowercase hex; used for tokens and for showing nonces in `Debug`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Decodes hex for golden fixtures.
#[cfg(test)]
pub(crate) fn from_hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_codes_read_back_however_they_are_typed() {
        let code = new_short_code().expect("code");
        assert_eq!(code.len(), 17);
        assert_eq!(canonical_code(&code).as_deref(), Some(code.as_str()));
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(canonical_code(&typed).as_deref(), Some(code.as_str()));
        assert_eq!(
            canonical_code("k7qf9xmaop4tnrl").as_deref(),
            Some("K7QF9-XMA0P-4TNR1"),
            "o is zero and l is one"
        );
        assert_eq!(canonical_code("K7QF9-XMA2P"), None, "too short");
        assert_eq!(
            canonical_code("K7QF9-XMA2P-4TNRU"),
            None,
            "U is not a digit"
        );
        assert_eq!(canonical_code("fse_0123"), None);
        assert_ne!(new_short_code().expect("code"), code);
    }

    #[test]
    fn tokens_are_prefixed_random_hex() {
        let a = new_token("fs_").expect("rng");
        let b = new_token("fs_").expect("rng");
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
        let body = a.strip_prefix("fs_").expect("prefix kept");
        assert!(
            body.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
            "{a}"
        );
    }

    #[test]
    fn token_hash_is_sha256() {
        // FIPS 180-2 test vector for "abc".
        assert_eq!(
            to_hex(&token_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(token_hash("fs_a"), token_hash("fs_b"));
    }

    #[test]
    fn ct_eq_cases() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"", b"", true),
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"xbc", false),
            (b"abc", b"ab", false),
            (b"", b"a", false),
        ];
        for (a, b, expected) in cases {
            assert_eq!(ct_eq(a, b), *expected, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)), bytes);
    }
}
