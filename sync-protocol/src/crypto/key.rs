//! Key material as a type that cannot leak by accident: it zeroizes when dropped, prints as
//! `***`, is not `Serialize`, and compares in constant time.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;
use super::token::ct_eq;

/// A 256-bit symmetric key: a document's data key, an organisation key, a master key or a
/// device store key.
///
/// Deliberately not `Clone`: every copy is one more place the key could outlive its use.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; SecretKey::LEN]);

impl SecretKey {
    /// Length of every key in bytes (AES-256).
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = SecretKey([0; Self::LEN]);
        SystemRandom::new()
            .fill(&mut key.0)
            .map_err(|_| CryptoError::Rng)?;
        Ok(key)
    }

    /// Takes ownership of raw key bytes. The caller's own copy (if any) is not erased by this;
    /// keep it in a `zeroize::Zeroizing` if it came from somewhere that matters.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        SecretKey(bytes)
    }

    /// Reads a key from a slice, such as the contents of a master key file.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != Self::LEN {
            return Err(CryptoError::Malformed("a key must be exactly 32 bytes"));
        }
        let mut key = SecretKey([0; Self::LEN]);
        key.0.copy_from_slice(bytes);
        Ok(key)
    }

    /// The raw bytes, only for writing a master key file or handing the key to ring.
    pub fn expose_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

// Constant time, so that comparing a guessed key against a real one leaks nothing about how
// many leading bytes matched.
impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for SecretKey {}

/// Which generation of a key sealed a payload; stored beside the ciphertext (in clear) and
/// bound into its associated data, so that after a rotation each payload names its key.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = SecretKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?} {key:#?}");
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn generated_keys_differ_and_compare_by_value() {
        let a = SecretKey::generate().expect("rng");
        let b = SecretKey::generate().expect("rng");
        assert_ne!(a, b);
        assert_eq!(a, SecretKey::from_bytes(*a.expose_bytes()));
    }

    #[test]
    fn from_slice_accepts_only_32_bytes() {
        assert!(SecretKey::from_slice(&[7; 32]).is_ok());
        for len in [0, 16, 31, 33, 64] {
            assert!(matches!(
                SecretKey::from_slice(&vec![7; len]),
                Err(CryptoError::Malformed(_))
            ));
        }
    }

    #[test]
    fn zeroize_clears_the_bytes() {
        let mut key = SecretKey::from_bytes([0x5a; 32]);
        key.zeroize();
        assert_eq!(key.expose_bytes(), &[0; 32]);
    }
}
