//! The encryption envelope: every payload at rest is sealed with AES-256-GCM under a key that
//! is itself wrapped, and bound to where it belongs, so that a stolen device, a copied database
//! or a ciphertext moved between rows reveals and proves nothing.
//!
//! # Key hierarchy
//!
//! - a **data key** per document seals that document's changes and snapshots on the server
//!   ([`Purpose::Change`], [`Purpose::Snapshot`]); destroying it erases the server's copy
//!   (crypto-shredding). It does not reach devices: a device reads pulled changes in the
//!   clear and seals its copy under its own store key, so erasure reaches devices as a
//!   notice they apply at their next sync (see ARCHITECTURE.md, "Keys, and a response's
//!   life");
//! - a **key-encryption key** (an organisation's key, or the server's master key) wraps data
//!   keys ([`wrap_key`], [`Purpose::DocKey`], [`Purpose::OrgKey`]); rotating it is [`rewrap`],
//!   which rewrites the small wrapped keys and never touches the data;
//! - on a device, the **store key** is wrapped by a key derived from the user's passphrase
//!   ([`PassphraseSlot`], [`Purpose::StoreKey`]).
//!
//! # Associated data
//!
//! Every seal authenticates a [`Binding`]: purpose, organisation, document, version and key id,
//! in a canonical length-prefixed encoding (see [`Binding::associated_data`]). A ciphertext
//! opened with any other binding fails with [`CryptoError::Tampered`]; in particular a data
//! ciphertext can never be unwrapped as a key, nor a change opened as a snapshot.
//!
//! # Nonces
//!
//! Each seal draws a fresh 96-bit nonce from the operating system's CSPRNG (`SystemRandom`).
//! NIST SP 800-38D caps random 96-bit nonces at 2^32 seals per key, which keeps the chance of
//! any repeat below 2^-32. Keys here stay far below that cap by construction: a data key seals
//! only one document's changes (thousands over its life, not billions), and a key-encryption key
//! seals one wrapped key per document (even 100 million documents is 2^27). A counter nonce
//! would need state shared by every device and server process holding the key, which an
//! offline-first system cannot keep consistent, so random nonces are the safer choice here.

mod envelope;
mod key;
mod passphrase;
mod token;

pub use envelope::{
    AEAD_FORMAT_V1, Binding, Cipher, NONCE_LEN, Opened, Purpose, Sealed, TAG_LEN, open, rewrap,
    seal, unwrap_key, wrap_key,
};
pub use key::{KeyId, SecretKey};
pub use passphrase::{MAX_ITERATIONS, MIN_ITERATIONS, PassphraseSlot};
pub use token::{TOKEN_BYTES, canonical_code, ct_eq, new_short_code, new_token, token_hash};

/// Everything that can go wrong sealing, opening, wrapping or unlocking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The passphrase does not match the slot (checked before any decryption is attempted).
    #[error("wrong passphrase for this store; check FIELDSYNC_PASSPHRASE or type it again")]
    WrongPassphrase,
    /// The passphrase is empty, which would protect nothing.
    #[error("the passphrase is empty; choose a passphrase of at least a few words")]
    EmptyPassphrase,
    /// Authentication failed: the bytes were altered, or they belong to another organisation,
    /// document, version, key or purpose than the one they were opened as.
    #[error(
        "encrypted data failed its integrity check: it was altered, or it belongs to another \
         organisation, document, version, key or purpose; do not trust it, and restore it from \
         a trusted copy or sync it again"
    )]
    Tampered,
    /// The data says which key generation sealed it, and the caller supplied another.
    #[error(
        "data was sealed under key id {found}, but key id {expected} was supplied; \
         look up the key by the id stored with the data"
    )]
    KeyIdMismatch { expected: u32, found: u32 },
    /// A passphrase slot asks for fewer PBKDF2 iterations than we accept: a downgrade attempt
    /// or a damaged file.
    #[error(
        "passphrase slot uses {iterations} PBKDF2 iterations, fewer than the required \
         {MIN_ITERATIONS}; the store file was altered or damaged, restore it from a backup"
    )]
    WeakSlot { iterations: u32 },
    /// A passphrase slot asks for so many iterations that unlocking would hang.
    #[error(
        "passphrase slot asks for {iterations} PBKDF2 iterations, more than the accepted \
         {MAX_ITERATIONS}; the store file was altered or damaged, restore it from a backup"
    )]
    SlotTooCostly { iterations: u32 },
    /// A data purpose was used to wrap a key, or a key purpose to seal data.
    #[error("purpose `{purpose}` cannot be used to {operation}; this is a bug in the caller")]
    WrongPurpose {
        purpose: Purpose,
        operation: &'static str,
    },
    /// The operating system's random number generator failed.
    #[error(
        "the system random number generator failed; retry, and check the operating system's \
         entropy source"
    )]
    Rng,
    /// ring refused a key it should always accept.
    #[error("the crypto library rejected a 256-bit key; this is a bug, please report it")]
    KeyRejected,
    /// Sealed bytes use a format version this build does not know.
    #[error(
        "sealed data uses format version {version}, which this build does not know; \
         upgrade fieldsync"
    )]
    UnsupportedFormat { version: u8 },
    /// The bytes are not a sealed payload or a key at all (wrong length, truncated).
    #[error("malformed encrypted data: {0}; the data is damaged, restore it from a trusted copy")]
    Malformed(&'static str),
}
