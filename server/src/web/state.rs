//! What a web form's page carries between requests: the interview and the respondent's place
//! in it, sealed with the organisation's key and bound to the link and to the browser's
//! session cookie (so a page cannot be replayed from another browser or forged: the CSRF
//! check), as one opaque field. The server keeps nothing between pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fieldsync_protocol::crypto::{Binding, Cipher, Purpose, Sealed};
use fieldsync_protocol::survey::interview::Snapshot;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::ORG_KEY_ID;

/// Largest sealed state a page may send back (a long form's answers fit many times over).
pub const MAX_STATE: usize = 256 * 1024;

/// One respondent's progress through one link's form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FormState {
    /// The browser session (cookie) this page belongs to.
    pub session: String,
    /// The response being answered: its id is fixed when the form opens, so a submission
    /// sent twice is one response.
    pub response_id: Uuid,
    pub survey_version: u32,
    /// The password was given (or the link has none).
    pub unlocked: bool,
    /// When the respondent reached the review: the time the response is stamped with, so a
    /// submission sent again is the same change.
    pub reviewed_at: Option<i64>,
    pub interview: Option<Snapshot>,
}

fn binding<'a>(org_id: &'a str, link_id: &'a str) -> Binding<'a> {
    Binding::new(Purpose::WebForm, org_id, link_id, 0, ORG_KEY_ID)
}

/// Seal the state for a page of `link_id`.
pub fn seal(
    cipher: &Cipher,
    org_id: &str,
    link_id: &str,
    state: &FormState,
) -> Result<String, String> {
    let mut bytes = Vec::new();
    ciborium::into_writer(state, &mut bytes).map_err(|e| e.to_string())?;
    let sealed = cipher
        .seal(&binding(org_id, link_id), &bytes)
        .map_err(|e| e.to_string())?;
    Ok(URL_SAFE_NO_PAD.encode(sealed.to_bytes()))
}

/// Open a page's state; `None` if it was not sealed for this link by this organisation's key
/// (or was altered), or is too large.
pub fn open(cipher: &Cipher, org_id: &str, link_id: &str, text: &str) -> Option<FormState> {
    if text.len() > MAX_STATE {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
    let sealed = Sealed::from_bytes(&bytes).ok()?;
    // Only this server seals states, so an authentic one was written by this code.
    let opened = cipher.open(&binding(org_id, link_id), &sealed).ok()?;
    ciborium::from_reader(opened.as_bytes()).ok()
}
