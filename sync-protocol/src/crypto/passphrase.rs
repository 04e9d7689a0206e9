//! A device store's key wrapped by a key derived from the user's passphrase, so a lost or
//! stolen device yields nothing without the passphrase, and changing the passphrase never
//! re-encrypts the store.

use std::num::NonZeroU32;

use ring::hmac;
use ring::pbkdf2::{self, PBKDF2_HMAC_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::envelope::{Binding, Cipher, Sealed};
use super::token::ct_eq;
use super::{CryptoError, SecretKey};

/// The fewest PBKDF2-HMAC-SHA256 iterations we create or open (OWASP's 2023 figure). Opening
/// refuses anything lower, so an attacker who edits the store file cannot downgrade it.
pub const MIN_ITERATIONS: u32 = 600_000;
/// The most iterations we will run; a slot asking for more was tampered with to make
/// unlocking hang.
pub const MAX_ITERATIONS: u32 = 10_000_000;

const SALT_LEN: usize = 16;
const KEK_LABEL: &[u8] = b"fieldsync/passphrase/v1/kek";
const CHECK_LABEL: &[u8] = b"fieldsync/passphrase/v1/check";

/// A store key wrapped under a passphrase. Holds nothing secret in clear, so it may be
/// serialised into the store's header.
///
/// PBKDF2's output is split (by HMAC under two labels) into the key-encryption key and a
/// check value. The check value tells a wrong passphrase apart from a damaged or misplaced
/// slot; it gives an attacker nothing, as testing a guess against it costs the same 600,000
/// iterations as testing it against the wrapped key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassphraseSlot {
    iterations: u32,
    #[serde(with = "serde_bytes")]
    salt: [u8; SALT_LEN],
    #[serde(with = "serde_bytes")]
    check: [u8; 32],
    wrapped: Sealed,
}

impl PassphraseSlot {
    /// Wraps `store_key` under `passphrase` with [`MIN_ITERATIONS`] and a fresh salt.
    /// `binding` must have a key purpose (normally [`super::Purpose::StoreKey`]) and must be
    /// given again to [`PassphraseSlot::open`].
    pub fn create(
        passphrase: &str,
        store_key: &SecretKey,
        binding: &Binding<'_>,
    ) -> Result<Self, CryptoError> {
        Self::create_with_iterations(passphrase, store_key, binding, MIN_ITERATIONS)
    }

    /// Like [`PassphraseSlot::create`] with a chosen cost, for raising it as hardware gets
    /// faster; it must lie in `MIN_ITERATIONS..=MAX_ITERATIONS`.
    pub fn create_with_iterations(
        passphrase: &str,
        store_key: &SecretKey,
        binding: &Binding<'_>,
        iterations: u32,
    ) -> Result<Self, CryptoError> {
        if passphrase.is_empty() {
            return Err(CryptoError::EmptyPassphrase);
        }
        if !binding.purpose.wraps_key() {
            // Refused before the costly derivation rather than after it.
            return Err(CryptoError::WrongPurpose {
                purpose: binding.purpose,
                operation: "wrap a key (use seal)",
            });
        }
        let rounds = check_iterations(iterations)?;
        let mut salt = [0; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| CryptoError::Rng)?;
        let (kek, check) = derive(passphrase, &salt, rounds)?;
        let wrapped = Cipher::new(&kek)?.wrap_key(binding, store_key)?;
        Ok(PassphraseSlot {
            iterations,
            salt,
            check,
            wrapped,
        })
    }

    /// Unwraps the store key. A wrong passphrase gives [`CryptoError::WrongPassphrase`]; a
    /// right passphrase with a wrong `binding` or altered wrapped bytes gives
    /// [`CryptoError::Tampered`].
    pub fn open(&self, passphrase: &str, binding: &Binding<'_>) -> Result<SecretKey, CryptoError> {
        // Checked before deriving: a lowered count must be refused, not tried.
        let rounds = check_iterations(self.iterations)?;
        let (kek, check) = derive(passphrase, &self.salt, rounds)?;
        if !ct_eq(&check, &self.check) {
            return Err(CryptoError::WrongPassphrase);
        }
        Cipher::new(&kek)?.unwrap_key(binding, &self.wrapped)
    }

    /// A new slot holding the same store key under `new_passphrase` (fresh salt, current
    /// minimum cost). The store's data is untouched; the caller replaces the old slot.
    pub fn change_passphrase(
        &self,
        old_passphrase: &str,
        new_passphrase: &str,
        binding: &Binding<'_>,
    ) -> Result<Self, CryptoError> {
        let store_key = self.open(old_passphrase, binding)?;
        Self::create_with_iterations(
            new_passphrase,
            &store_key,
            binding,
            self.iterations.max(MIN_ITERATIONS),
        )
    }

    /// The PBKDF2 cost recorded in the slot.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
}

fn check_iterations(iterations: u32) -> Result<NonZeroU32, CryptoError> {
    if iterations < MIN_ITERATIONS {
        return Err(CryptoError::WeakSlot { iterations });
    }
    if iterations > MAX_ITERATIONS {
        return Err(CryptoError::SlotTooCostly { iterations });
    }
    NonZeroU32::new(iterations).ok_or(CryptoError::WeakSlot { iterations })
}

/// PBKDF2 once, then two independent 32-byte outputs by HMAC under distinct labels (one
/// PBKDF2 block, so asking for 64 bytes does not double the user's wait).
fn derive(
    passphrase: &str,
    salt: &[u8],
    rounds: NonZeroU32,
) -> Result<(SecretKey, [u8; 32]), CryptoError> {
    let mut stretched = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(
        PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        passphrase.as_bytes(),
        stretched.as_mut(),
    );
    let prk = hmac::Key::new(hmac::HMAC_SHA256, stretched.as_ref());
    let kek = SecretKey::from_slice(hmac::sign(&prk, KEK_LABEL).as_ref())?;
    let mut check = [0; 32];
    check.copy_from_slice(hmac::sign(&prk, CHECK_LABEL).as_ref());
    Ok((kek, check))
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::crypto::{KeyId, Purpose};

    const PASSPHRASE: &str = "correct horse battery staple";

    fn binding() -> Binding<'static> {
        Binding::new(Purpose::StoreKey, "org-1", "device-store-7", 0, KeyId(1))
    }

    /// One slot (one 600k-iteration derivation) shared by the tests that only read it.
    fn shared() -> &'static (PassphraseSlot, [u8; 32]) {
        static SLOT: OnceLock<(PassphraseSlot, [u8; 32])> = OnceLock::new();
        SLOT.get_or_init(|| {
            let key = SecretKey::from_bytes([0x42; 32]);
            let slot = PassphraseSlot::create(PASSPHRASE, &key, &binding()).expect("create");
            (slot, *key.expose_bytes())
        })
    }

    #[test]
    fn right_passphrase_opens_the_store_key() {
        let (slot, key) = shared();
        assert_eq!(slot.iterations(), MIN_ITERATIONS);
        let opened = slot.open(PASSPHRASE, &binding()).expect("open");
        assert_eq!(opened.expose_bytes(), key);
    }

    #[test]
    fn wrong_passphrase_is_a_clear_error() {
        let (slot, _) = shared();
        let err = slot
            .open("correct horse battery stapler", &binding())
            .expect_err("wrong passphrase must fail");
        assert_eq!(err, CryptoError::WrongPassphrase);
        assert_eq!(
            err.to_string(),
            "wrong passphrase for this store; check FIELDSYNC_PASSPHRASE or type it again"
        );
    }

    #[test]
    fn lowered_iterations_are_refused_before_deriving() {
        let (slot, _) = shared();
        for iterations in [0, 1, 1_000, MIN_ITERATIONS - 1] {
            let mut weak = slot.clone();
            weak.iterations = iterations;
            assert_eq!(
                weak.open(PASSPHRASE, &binding()).expect_err("weak slot"),
                CryptoError::WeakSlot { iterations }
            );
        }
        let mut costly = slot.clone();
        costly.iterations = u32::MAX;
        assert_eq!(
            costly
                .open(PASSPHRASE, &binding())
                .expect_err("costly slot"),
            CryptoError::SlotTooCostly {
                iterations: u32::MAX
            }
        );
    }

    #[test]
    fn raised_iterations_do_not_open() {
        // A tampered count changes the derived key, so the check fails like a wrong passphrase.
        let (slot, _) = shared();
        let mut raised = slot.clone();
        raised.iterations = MIN_ITERATIONS + 1;
        assert_eq!(
            raised.open(PASSPHRASE, &binding()).expect_err("raised"),
            CryptoError::WrongPassphrase
        );
    }

    #[test]
    fn right_passphrase_in_the_wrong_place_is_tampered() {
        let (slot, _) = shared();
        let elsewhere = Binding::new(Purpose::StoreKey, "org-1", "device-store-8", 0, KeyId(1));
        assert_eq!(
            slot.open(PASSPHRASE, &elsewhere).expect_err("other store"),
            CryptoError::Tampered
        );
        let mut altered = slot.clone();
        altered.wrapped.ciphertext[0] ^= 1;
        assert_eq!(
            altered.open(PASSPHRASE, &binding()).expect_err("altered"),
            CryptoError::Tampered
        );
    }

    #[test]
    fn changing_the_passphrase_keeps_the_key() {
        let (slot, key) = shared();
        let changed = slot
            .change_passphrase(PASSPHRASE, "a whole new passphrase", &binding())
            .expect("change");
        assert_ne!(changed.salt, slot.salt);
        assert_eq!(
            changed
                .open(PASSPHRASE, &binding())
                .expect_err("old passphrase"),
            CryptoError::WrongPassphrase
        );
        let opened = changed
            .open("a whole new passphrase", &binding())
            .expect("new passphrase");
        assert_eq!(opened.expose_bytes(), key);
    }

    #[test]
    fn creating_refuses_weak_settings() {
        let key = SecretKey::from_bytes([1; 32]);
        assert_eq!(
            PassphraseSlot::create("", &key, &binding()).expect_err("empty"),
            CryptoError::EmptyPassphrase
        );
        assert_eq!(
            PassphraseSlot::create_with_iterations("x", &key, &binding(), 100_000)
                .expect_err("weak"),
            CryptoError::WeakSlot {
                iterations: 100_000
            }
        );
        let data_binding = Binding::new(Purpose::Change, "org-1", "doc", 0, KeyId(1));
        assert!(matches!(
            PassphraseSlot::create("x", &key, &data_binding),
            Err(CryptoError::WrongPurpose { .. })
        ));
    }
}
