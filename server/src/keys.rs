//! The server's key hierarchy: the instance master key (a file readable only by its owner)
//! wraps each organisation's key, which wraps each document's data key, which seals that
//! document's changes and summaries. Unwrapped keys are cached in memory, never written.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use fieldsync_protocol::crypto::{Binding, Cipher, CryptoError, KeyId, Purpose, Sealed, SecretKey};

/// Generation of the master key that wraps organisation keys.
const MASTER_KEY_ID: KeyId = KeyId(1);
/// Generation of organisation keys that wrap document keys.
pub const ORG_KEY_ID: KeyId = KeyId(1);
/// Generation of document data keys.
pub const DOC_KEY_ID: KeyId = KeyId(1);
/// How many document ciphers to keep ready; past this the cache starts over.
const DOC_CACHE_LIMIT: usize = 20_000;

/// Errors loading or using keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "master key file {path} is {len} bytes, expected 32; point --master-key at the right file or restore it from a backup"
    )]
    BadMasterKey { path: String, len: usize },
    #[error(
        "master key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    OpenPermissions { path: String, mode: u32 },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Keys in use by this server instance.
pub struct KeyRing {
    master: Cipher,
    /// The seed of the key chaining the audit entries of no organisation (the operator's,
    /// support staff's): derived from the master key, or, after a rotation, the one the
    /// database keeps wrapped by the new master key (the chain goes on unbroken).
    operator_audit: Mutex<[u8; 32]>,
    orgs: Mutex<HashMap<String, Arc<OrgKeys>>>,
    docs: Mutex<HashMap<String, Arc<Cipher>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing(***)")
    }
}

impl KeyRing {
    /// Load the master key from `path`, creating it (mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<KeyRing, KeyError> {
        let key = load_or_create_master(path)?;
        Ok(KeyRing {
            master: Cipher::new(&key)?,
            operator_audit: Mutex::new(derive_seed(&key, AUDIT_LABEL)),
            orgs: Mutex::new(HashMap::new()),
            docs: Mutex::new(HashMap::new()),
        })
    }

    /// A new organisation key, wrapped by the master key, as stored in `orgs.wrapped_key`.
    pub fn new_org_key(&self, org_id: &str) -> Result<Vec<u8>, KeyError> {
        let key = SecretKey::generate()?;
        let wrapped = self.master.wrap_key(&org_binding(org_id), &key)?;
        self.orgs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(org_id.to_owned(), Arc::new(OrgKeys::from_key(&key)?));
        Ok(wrapped.to_bytes())
    }

    /// The organisation's key, unwrapped from its stored form.
    pub fn org_cipher(&self, org_id: &str, wrapped: &[u8]) -> Result<Arc<Cipher>, KeyError> {
        Ok(self.org_keys(org_id, wrapped)?.cipher.clone())
    }

    /// The organisation's key and the keys derived from it, unwrapped from its stored form.
    pub fn org_keys(&self, org_id: &str, wrapped: &[u8]) -> Result<Arc<OrgKeys>, KeyError> {
        if let Some(k) = self
            .orgs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(org_id)
        {
            return Ok(k.clone());
        }
        let sealed = Sealed::from_bytes(wrapped)?;
        let key = self.master.unwrap_key(&org_binding(org_id), &sealed)?;
        let keys = Arc::new(OrgKeys::from_key(&key)?);
        self.orgs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(org_id.to_owned(), keys.clone());
        Ok(keys)
    }

    /// The key chaining the audit entries of `org` (its id and wrapped key), or of no
    /// organisation.
    pub fn audit_key(&self, org: Option<(&str, &[u8])>) -> Result<ring::hmac::Key, KeyError> {
        match org {
            Some((org_id, wrapped)) => Ok(self.org_keys(org_id, wrapped)?.audit.clone()),
            None => Ok(ring::hmac::Key::new(
                ring::hmac::HMAC_SHA256,
                &*self
                    .operator_audit
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            )),
        }
    }

    /// A new data key for a document: the cipher to seal with and its wrapped form to store.
    pub fn new_doc_key(
        &self,
        org: &Cipher,
        org_id: &str,
        doc_id: &str,
    ) -> Result<(Arc<Cipher>, Vec<u8>), KeyError> {
        let key = SecretKey::generate()?;
        let wrapped = org.wrap_key(&doc_key_binding(org_id, doc_id), &key)?;
        let cipher = Arc::new(Cipher::new(&key)?);
        self.remember_doc(doc_id, cipher.clone());
        Ok((cipher, wrapped.to_bytes()))
    }

    /// A document's cipher, unwrapped from its stored wrapped key.
    pub fn doc_cipher(
        &self,
        org: &Cipher,
        org_id: &str,
        doc_id: &str,
        wrapped: &[u8],
    ) -> Result<Arc<Cipher>, KeyError> {
        if let Some(c) = self
            .docs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(doc_id)
        {
            return Ok(c.clone());
        }
        let sealed = Sealed::from_bytes(wrapped)?;
        let key = org.unwrap_key(&doc_key_binding(org_id, doc_id), &sealed)?;
        let cipher = Arc::new(Cipher::new(&key)?);
        self.remember_doc(doc_id, cipher.clone());
        Ok(cipher)
    }

    /// Forget a document's cached key (after erasure).
    pub fn forget_doc(&self, doc_id: &str) {
        self.docs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(doc_id);
    }

    fn remember_doc(&self, doc_id: &str, cipher: Arc<Cipher>) {
        let mut docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
        if docs.len() >= DOC_CACHE_LIMIT {
            docs.clear();
        }
        docs.insert(doc_id.to_owned(), cipher);
    }
}

/// What [`KeyRing::check_value`] seals: a database records it on first use, and an instance
/// whose master key cannot open it is refused.
/// What an organisation's key protects: its data keys (wrapped by `cipher`), the subject
/// index and the audit chain (keyed by MAC keys derived from it, so that only a holder of
/// the organisation key can compute or forge either).
pub struct OrgKeys {
    pub cipher: Arc<Cipher>,
    subject: ring::hmac::Key,
    audit: ring::hmac::Key,
    media: ring::hmac::Key,
}

impl std::fmt::Debug for OrgKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrgKeys(***)")
    }
}

const SUBJECT_LABEL: &[u8] = b"fieldsync subject index, version 1";
const AUDIT_LABEL: &[u8] = b"fieldsync audit chain, version 1";
const MEDIA_LABEL: &[u8] = b"fieldsync attachment address, version 1";

/// A MAC key for one purpose, derived from a key with HMAC-SHA256 over the purpose's label
/// (HKDF's extract step with the label as salt would serve as well; one step is enough for a
/// uniformly random input key).
fn derive_mac(key: &SecretKey, label: &[u8]) -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &derive_seed(key, label))
}

/// The bytes [`derive_mac`] keys its MAC with.
fn derive_seed(key: &SecretKey, label: &[u8]) -> [u8; 32] {
    let parent = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose_bytes());
    let mut seed = [0; 32];
    seed.copy_from_slice(ring::hmac::sign(&parent, label).as_ref());
    seed
}

/// What a master-key rotation writes to the database, all in one transaction.
#[derive(Debug)]
pub struct Rotation {
    /// Every organisation key, wrapped by the new master key.
    pub orgs: Vec<(String, Vec<u8>)>,
    /// The new key's check value.
    pub check: Vec<u8>,
    /// The operator audit chain's seed, wrapped by the new key.
    pub operator_audit: Vec<u8>,
}

fn operator_audit_binding() -> Binding<'static> {
    Binding::new(
        Purpose::OrgKey,
        "",
        "operator-audit-chain",
        0,
        MASTER_KEY_ID,
    )
}

impl KeyRing {
    /// Rewrap `orgs` (id, wrapped key) and the operator chain's seed under `new_master`. Only
    /// wrappings change: organisation keys, and everything under them, stay as they are.
    pub fn rotate(
        &self,
        new_master: &SecretKey,
        orgs: &[(String, Vec<u8>)],
    ) -> Result<Rotation, KeyError> {
        let next = Cipher::new(new_master)?;
        let mut rewrapped = Vec::with_capacity(orgs.len());
        for (org_id, wrapped) in orgs {
            let key = self
                .master
                .unwrap_key(&org_binding(org_id), &Sealed::from_bytes(wrapped)?)?;
            rewrapped.push((
                org_id.clone(),
                next.wrap_key(&org_binding(org_id), &key)?.to_bytes(),
            ));
        }
        let seed = *self
            .operator_audit
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Ok(Rotation {
            orgs: rewrapped,
            check: next.seal(&check_binding(), CHECK_PLAINTEXT)?.to_bytes(),
            operator_audit: next
                .wrap_key(&operator_audit_binding(), &SecretKey::from_bytes(seed))?
                .to_bytes(),
        })
    }

    /// Take the operator chain's seed a rotation left in the database (wrapped by this key).
    pub fn adopt_operator_audit(&self, wrapped: &[u8]) -> Result<(), KeyError> {
        let key = self
            .master
            .unwrap_key(&operator_audit_binding(), &Sealed::from_bytes(wrapped)?)?;
        *self
            .operator_audit
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = *key.expose_bytes();
        Ok(())
    }
}

/// Write a new master key to `path` (which must not exist), 0600 and flushed; the key.
pub fn create_master_key(path: &Path) -> Result<SecretKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let key = SecretKey::generate()?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(key.expose_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key)
}

impl OrgKeys {
    fn from_key(key: &SecretKey) -> Result<OrgKeys, KeyError> {
        Ok(OrgKeys {
            cipher: Arc::new(Cipher::new(key)?),
            subject: derive_mac(key, SUBJECT_LABEL),
            audit: derive_mac(key, AUDIT_LABEL),
            media: derive_mac(key, MEDIA_LABEL),
        })
    }

    /// The subject index entry of an identifier (already normalised, see
    /// `fieldsync_protocol::subject::normalize`): equal for equal identifiers within the
    /// organisation, unrelated across organisations, and not reversible without the key.
    pub fn subject_hash(&self, normalized: &str) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.subject, normalized.as_bytes());
        let mut out = [0; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Where a file of this SHA-256 is stored: equal files share it within the organisation
    /// (stored once), and nobody without the key can tell whether two organisations hold the
    /// same file.
    pub fn media_address(&self, sha256: &[u8]) -> Vec<u8> {
        ring::hmac::sign(&self.media, sha256).as_ref().to_vec()
    }
}

const CHECK_PLAINTEXT: &[u8] = b"fieldsync master key check, version 1";

fn check_binding() -> Binding<'static> {
    Binding::new(Purpose::Snapshot, "", "master-key-check", 0, MASTER_KEY_ID)
}

impl KeyRing {
    /// A value only this master key can open, for a database to record.
    pub fn check_value(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self
            .master
            .seal(&check_binding(), CHECK_PLAINTEXT)?
            .to_bytes())
    }

    /// Whether `stored` was made by [`KeyRing::check_value`] with this master key.
    pub fn verify_check_value(&self, stored: &[u8]) -> bool {
        Sealed::from_bytes(stored)
            .ok()
            .and_then(|sealed| self.master.open(&check_binding(), &sealed).ok())
            .is_some_and(|plain| plain.as_bytes() == CHECK_PLAINTEXT)
    }
}

fn org_binding(org_id: &str) -> Binding<'_> {
    Binding::new(Purpose::OrgKey, org_id, org_id, 0, MASTER_KEY_ID)
}

fn doc_key_binding<'a>(org_id: &'a str, doc_id: &'a str) -> Binding<'a> {
    Binding::new(Purpose::DocKey, org_id, doc_id, 0, ORG_KEY_ID)
}

/// Where one change ciphertext belongs: its document and its sequence number.
pub fn change_binding<'a>(org_id: &'a str, doc_id: &'a str, seq: i64) -> Binding<'a> {
    Binding::new(Purpose::Change, org_id, doc_id, seq as u64, DOC_KEY_ID)
}

/// Where a document's materialised summary belongs: its document and the last change it saw.
pub fn summary_binding<'a>(org_id: &'a str, doc_id: &'a str, upto_seq: i64) -> Binding<'a> {
    Binding::new(
        Purpose::Snapshot,
        org_id,
        doc_id,
        upto_seq as u64,
        DOC_KEY_ID,
    )
}

fn load_or_create_master(path: &Path) -> Result<SecretKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match fs::read(path) {
        Ok(bytes) => {
            let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::OpenPermissions {
                    path: path.display().to_string(),
                    mode,
                });
            }
            let arr: [u8; 32] =
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyError::BadMasterKey {
                        path: path.display().to_string(),
                        len: bytes.len(),
                    })?;
            Ok(SecretKey::from_bytes(arr))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(io)?;
            }
            // create_new: never overwrite a key that appeared meanwhile; 0600 from the start,
            // so the key is never readable by others even for an instant.
            create_master_key(path)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/master.key");
        let ring = KeyRing::load_or_create(&path).expect("create");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let wrapped = ring.new_org_key("org-1").expect("org key");

        // A second instance on the same file unwraps the same organisation key.
        let again = KeyRing::load_or_create(&path).expect("reload");
        let org = again.org_cipher("org-1", &wrapped).expect("unwrap");
        let (doc, wrapped_doc) = again.new_doc_key(&org, "org-1", "doc-1").expect("doc key");
        let sealed = doc
            .seal(&change_binding("org-1", "doc-1", 5), b"answer")
            .expect("seal");
        again.forget_doc("doc-1");
        let doc2 = again
            .doc_cipher(&org, "org-1", "doc-1", &wrapped_doc)
            .expect("unwrap doc");
        let opened = doc2
            .open(&change_binding("org-1", "doc-1", 5), &sealed)
            .expect("open");
        assert_eq!(opened.as_bytes(), b"answer");

        // The organisation key does not open under another organisation's name.
        let fresh = KeyRing::load_or_create(&path).expect("reload");
        assert!(fresh.org_cipher("org-2", &wrapped).is_err());
    }

    #[test]
    fn readable_master_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("master.key");
        KeyRing::load_or_create(&path).expect("create");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = KeyRing::load_or_create(&path).expect_err("must refuse");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
