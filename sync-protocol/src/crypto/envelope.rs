//! AES-256-GCM sealing bound to a [`Binding`], key wrapping and rotation, and the compact
//! byte form of a sealed payload stored in SQLite blobs.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::token::to_hex;
use super::{CryptoError, KeyId, SecretKey};

/// Nonce length of AES-256-GCM in bytes.
pub const NONCE_LEN: usize = ring::aead::NONCE_LEN;
/// Authentication tag length in bytes, appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// First byte of [`Sealed::to_bytes`]: the only byte format so far.
pub const AEAD_FORMAT_V1: u8 = 1;

/// Domain tag opening the associated data; a future format changes it, so a v1 ciphertext
/// can never be opened under v2 rules or the reverse.
const AD_DOMAIN: &[u8] = b"fieldsync/aead/v1";
/// Bytes of associated data kept on the stack; two UUIDs and a label fit with room to spare,
/// longer identifiers fall back to one heap allocation.
const AD_INLINE: usize = 256;
/// Header of the byte form: format version, key id.
const HEADER_LEN: usize = 1 + 4;

/// What a ciphertext is, so one kind can never be opened as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// One Automerge change of a document, sealed with that document's data key.
    Change,
    /// A saved (compacted) Automerge document, sealed with its data key.
    Snapshot,
    /// A document's data key, wrapped by its organisation's key.
    DocKey,
    /// An organisation's key, wrapped by the server's master key.
    OrgKey,
    /// A device store's key, wrapped by a passphrase-derived key.
    StoreKey,
    /// One chunk of an attachment (or its digest record), sealed with the attachment's key.
    Media,
    /// An attachment's data key, wrapped by the key of the response that references it (on
    /// a device, by the store key).
    MediaKey,
    /// A web form's interview between two pages (carried by the respondent's browser),
    /// sealed with the organisation's key.
    WebForm,
    /// An email invitation's address and name, sealed with the organisation's key.
    Invitation,
}

impl Purpose {
    /// Every purpose, for exhaustive tests and parsing.
    pub const ALL: [Purpose; 9] = [
        Purpose::Change,
        Purpose::Snapshot,
        Purpose::DocKey,
        Purpose::OrgKey,
        Purpose::StoreKey,
        Purpose::Media,
        Purpose::MediaKey,
        Purpose::WebForm,
        Purpose::Invitation,
    ];

    /// The stable label authenticated in the associated data. Never change one: every
    /// ciphertext of that purpose would stop opening.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::Change => "change",
            Purpose::Snapshot => "snapshot",
            Purpose::DocKey => "doc-key",
            Purpose::OrgKey => "org-key",
            Purpose::StoreKey => "store-key",
            Purpose::Media => "media",
            Purpose::MediaKey => "media-key",
            Purpose::WebForm => "web-form",
            Purpose::Invitation => "invitation",
        }
    }

    /// The purpose whose label is `label`.
    pub fn from_label(label: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.label() == label)
    }

    /// Whether this purpose seals a key (via [`wrap_key`]) rather than data (via [`seal`]).
    pub fn wraps_key(self) -> bool {
        matches!(
            self,
            Purpose::DocKey | Purpose::OrgKey | Purpose::StoreKey | Purpose::MediaKey
        )
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Where a ciphertext belongs. All of it is authenticated (not encrypted) with the payload.
///
/// For wrapped keys, `doc` names what the key protects (a document id for a data key, the
/// organisation id again for an organisation key, a store id for a store key) and `version`
/// is the wrap's generation, or 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding<'a> {
    pub purpose: Purpose,
    pub org: &'a str,
    pub doc: &'a str,
    pub version: u64,
    pub key_id: KeyId,
}

impl<'a> Binding<'a> {
    pub fn new(purpose: Purpose, org: &'a str, doc: &'a str, version: u64, key_id: KeyId) -> Self {
        Binding {
            purpose,
            org,
            doc,
            version,
            key_id,
        }
    }

    /// The canonical associated data:
    ///
    /// ```text
    /// "fieldsync/aead/v1"
    /// u32be len(purpose label) ‖ purpose label
    /// u32be len(org)           ‖ org (UTF-8)
    /// u32be len(doc)           ‖ doc (UTF-8)
    /// u64be version
    /// u32be key id
    /// ```
    ///
    /// Every variable field is length-prefixed, so no two bindings encode alike (`org="ab",
    /// doc="c"` differs from `org="a", doc="bc"`).
    pub fn associated_data(&self) -> Vec<u8> {
        let mut out = vec![0; self.ad_len()];
        self.write_ad(&mut out);
        out
    }

    fn ad_len(&self) -> usize {
        AD_DOMAIN.len()
            + 4
            + self.purpose.label().len()
            + 4
            + self.org.len()
            + 4
            + self.doc.len()
            + 8
            + 4
    }

    /// Writes the associated data into `out`, which is exactly `ad_len()` long.
    fn write_ad(&self, out: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(AD_DOMAIN);
        for field in [self.purpose.label(), self.org, self.doc] {
            // Identifiers longer than 4 GiB cannot exist in practice; saturating keeps the
            // encoding total rather than panicking, and such a binding still differs from others
            // by its bytes.
            let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
            put(&len.to_be_bytes());
            put(field.as_bytes());
        }
        put(&self.version.to_be_bytes());
        put(&self.key_id.0.to_be_bytes());
    }

    /// The associated data without a heap allocation in the common case: seal and open run
    /// tens of thousands of times a second on the push path.
    fn ad(&self) -> AdBuf {
        let len = self.ad_len();
        if len <= AD_INLINE {
            let mut buf = [0; AD_INLINE];
            self.write_ad(&mut buf[..len]);
            AdBuf::Inline(buf, len)
        } else {
            AdBuf::Heap(self.associated_data())
        }
    }
}

#[expect(
    clippy::large_enum_variant,
    reason = "the inline buffer is the point: it lives on the stack for one seal or open"
)]
enum AdBuf {
    Inline([u8; AD_INLINE], usize),
    Heap(Vec<u8>),
}

impl AsRef<[u8]> for AdBuf {
    fn as_ref(&self) -> &[u8] {
        match self {
            AdBuf::Inline(buf, len) => &buf[..*len],
            AdBuf::Heap(vec) => vec,
        }
    }
}

/// A sealed payload: safe to store, send and log. The key id and nonce travel in clear;
/// `ciphertext` is the AES-256-GCM ciphertext followed by its 16-byte tag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub key_id: KeyId,
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; NONCE_LEN],
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// The compact byte form for SQLite blobs:
    ///
    /// ```text
    /// u8 format version (1) ‖ u32be key id ‖ 12-byte nonce ‖ ciphertext ‖ 16-byte tag
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(AEAD_FORMAT_V1);
        out.extend_from_slice(&self.key_id.0.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Length of [`Sealed::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + NONCE_LEN + self.ciphertext.len()
    }

    /// Parses [`Sealed::to_bytes`]. Only the framing is checked here; authenticity is checked
    /// by [`open`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Sealed, CryptoError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or(CryptoError::Malformed("sealed data is empty"))?;
        if version != AEAD_FORMAT_V1 {
            return Err(CryptoError::UnsupportedFormat { version });
        }
        if rest.len() < 4 + NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed("sealed data is truncated"));
        }
        let (key_id, rest) = rest.split_at(4);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let mut key_id_bytes = [0; 4];
        key_id_bytes.copy_from_slice(key_id);
        let mut nonce_bytes = [0; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        Ok(Sealed {
            key_id: KeyId(u32::from_be_bytes(key_id_bytes)),
            nonce: nonce_bytes,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

// Hex nonce and a length instead of kilobytes of decimal bytes in logs.
impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id.0)
            .field("nonce", &to_hex(&self.nonce))
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// An opened payload: plaintext that is erased from memory when dropped, and that is a
/// different type from [`Sealed`] so it cannot be stored or uploaded by mistake.
pub struct Opened(Zeroizing<Vec<u8>>);

impl Opened {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The plaintext buffer itself, still erased on drop.
    pub fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl AsRef<[u8]> for Opened {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Opened(<{} bytes>)", self.0.len())
    }
}

/// One key ready for AES-256-GCM, for sealing or opening many payloads without re-expanding
/// the key each time (the free functions build one per call).
pub struct Cipher {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Cipher {
    pub fn new(key: &SecretKey) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose_bytes())
            .map_err(|_| CryptoError::KeyRejected)?;
        Ok(Cipher {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Seals data (a change or a snapshot) under a fresh random nonce.
    pub fn seal(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        if binding.purpose.wraps_key() {
            return Err(CryptoError::WrongPurpose {
                purpose: binding.purpose,
                operation: "seal data (use wrap_key)",
            });
        }
        self.seal_any(binding, plaintext)
    }

    /// Opens data sealed by [`Cipher::seal`] under the same binding.
    pub fn open(&self, binding: &Binding<'_>, sealed: &Sealed) -> Result<Opened, CryptoError> {
        // One copy is unavoidable when the sealed value is borrowed: ring decrypts in place.
        self.open_buffer(
            binding,
            sealed.key_id,
            &sealed.nonce,
            Zeroizing::new(sealed.ciphertext.clone()),
        )
    }

    /// Like [`Cipher::open`], decrypting in the sealed value's own buffer (no copy).
    pub fn open_owned(&self, binding: &Binding<'_>, sealed: Sealed) -> Result<Opened, CryptoError> {
        let Sealed {
            key_id,
            nonce,
            ciphertext,
        } = sealed;
        self.open_buffer(binding, key_id, &nonce, Zeroizing::new(ciphertext))
    }

    /// Wraps `key` under this key-encryption key.
    pub fn wrap_key(&self, binding: &Binding<'_>, key: &SecretKey) -> Result<Sealed, CryptoError> {
        if !binding.purpose.wraps_key() {
            return Err(CryptoError::WrongPurpose {
                purpose: binding.purpose,
                operation: "wrap a key (use seal)",
            });
        }
        self.seal_any(binding, key.expose_bytes())
    }

    /// Unwraps a key wrapped by [`Cipher::wrap_key`] under the same binding.
    pub fn unwrap_key(
        &self,
        binding: &Binding<'_>,
        wrapped: &Sealed,
    ) -> Result<SecretKey, CryptoError> {
        if !binding.purpose.wraps_key() {
            return Err(CryptoError::WrongPurpose {
                purpose: binding.purpose,
                operation: "unwrap a key (use open)",
            });
        }
        let opened = self.open(binding, wrapped)?;
        SecretKey::from_slice(opened.as_bytes())
    }

    fn seal_any(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let mut nonce = [0; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| CryptoError::Rng)?;
        self.seal_with_nonce(binding, nonce, plaintext)
    }

    /// Seals under a caller-chosen nonce. Only the random-nonce path above and the golden
    /// vector test may call this: a repeated nonce under one key breaks GCM entirely.
    pub(super) fn seal_with_nonce(
        &self,
        binding: &Binding<'_>,
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
    ) -> Result<Sealed, CryptoError> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        // Failure here means a plaintext beyond GCM's 64 GiB limit, far above any payload.
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding.ad()),
                &mut buf,
            )
            .map_err(|_| CryptoError::Malformed("plaintext is too large to seal"))?;
        Ok(Sealed {
            key_id: binding.key_id,
            nonce,
            ciphertext: buf,
        })
    }

    fn open_buffer(
        &self,
        binding: &Binding<'_>,
        key_id: KeyId,
        nonce: &[u8; NONCE_LEN],
        mut buf: Zeroizing<Vec<u8>>,
    ) -> Result<Opened, CryptoError> {
        if key_id != binding.key_id {
            return Err(CryptoError::KeyIdMismatch {
                expected: binding.key_id.0,
                found: key_id.0,
            });
        }
        if buf.len() < TAG_LEN {
            return Err(CryptoError::Malformed(
                "ciphertext is shorter than its authentication tag",
            ));
        }
        let plaintext_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(binding.ad()),
                buf.as_mut_slice(),
            )
            .map_err(|_| CryptoError::Tampered)?
            .len();
        // The tag bytes left past the end stay inside the zeroized capacity.
        buf.truncate(plaintext_len);
        Ok(Opened(buf))
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(***)")
    }
}

/// Seals data under `key`; see [`Cipher::seal`].
pub fn seal(
    key: &SecretKey,
    binding: &Binding<'_>,
    plaintext: &[u8],
) -> Result<Sealed, CryptoError> {
    Cipher::new(key)?.seal(binding, plaintext)
}

/// Opens data sealed by [`seal`]; see [`Cipher::open`].
pub fn open(
    key: &SecretKey,
    binding: &Binding<'_>,
    sealed: &Sealed,
) -> Result<Opened, CryptoError> {
    Cipher::new(key)?.open(binding, sealed)
}

/// Wraps `key` under `kek`; see [`Cipher::wrap_key`].
pub fn wrap_key(
    kek: &SecretKey,
    binding: &Binding<'_>,
    key: &SecretKey,
) -> Result<Sealed, CryptoError> {
    Cipher::new(kek)?.wrap_key(binding, key)
}

/// Unwraps a key wrapped by [`wrap_key`]; see [`Cipher::unwrap_key`].
pub fn unwrap_key(
    kek: &SecretKey,
    binding: &Binding<'_>,
    wrapped: &Sealed,
) -> Result<SecretKey, CryptoError> {
    Cipher::new(kek)?.unwrap_key(binding, wrapped)
}

/// Moves a wrapped key from one key-encryption key (and binding, typically a new key id) to
/// another. The wrapped key itself is unchanged, so everything it sealed stays valid as is:
/// rotation rewrites a few bytes per document, never the data.
pub fn rewrap(
    old_kek: &SecretKey,
    old_binding: &Binding<'_>,
    new_kek: &SecretKey,
    new_binding: &Binding<'_>,
    wrapped: &Sealed,
) -> Result<Sealed, CryptoError> {
    let key = unwrap_key(old_kek, old_binding, wrapped)?;
    wrap_key(new_kek, new_binding, &key)
}

#[cfg(test)]
mod tests;
