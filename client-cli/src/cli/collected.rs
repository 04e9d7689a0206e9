//! Filters by when, where and by whom responses were collected, shared by `response list`
//! and `export`.

use fieldsync_client::exit::Failure;
use fieldsync_client::store::Store;
use fieldsync_protocol::api::time_bound;

/// When and where listed responses were collected.
#[derive(Debug, Default, clap::Args)]
pub struct Collected {
    /// Only responses started on or after this day (YYYY-MM-DD, UTC) or time (RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only responses started on or before this day (the whole day) or before this time.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only responses created on this device: the name it enrolled with
    /// (`enroll --device-name`, shown by `enumerator list`) or its id.
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Only responses this enumerator (or member) collected: a name or an id.
    #[arg(long, value_name = "NAME")]
    pub enumerator: Option<String>,
}

impl Collected {
    /// The bounds as ms since the epoch, refusing a date that is not one.
    pub fn bounds(&self) -> Result<(Option<i64>, Option<i64>), Failure> {
        let bound = |text: &Option<String>, what: &str, end| {
            text.as_deref()
                .map(|t| time_bound(t, end).map_err(|e| Failure::Invalid(format!("--{what} {e}"))))
                .transpose()
        };
        Ok((
            bound(&self.since, "since", false)?,
            bound(&self.until, "until", true)?,
        ))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.since.is_none()
            && self.until.is_none()
            && self.device.is_none()
            && self.enumerator.is_none()
    }

    /// The ids of who may have created a listed response, `None` for anyone. An id (or a
    /// prefix of one that a held response was created by) and this device's own name need
    /// no network; other names are looked up on the server.
    pub(super) fn collectors(
        &self,
        store: &Store,
        authors: &[String],
    ) -> anyhow::Result<Option<std::collections::HashSet<String>>> {
        use std::collections::HashSet;
        let mut members = None;
        let mut pick = |text: Option<&str>, what: &str, device: bool| -> anyhow::Result<_> {
            let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
                return Ok(None);
            };
            let lower = text.to_lowercase();
            let by_id: HashSet<String> = authors
                .iter()
                .filter(|a| lower.len() >= 4 && a.starts_with(&lower))
                .cloned()
                .collect();
            if !by_id.is_empty() {
                return Ok(Some(by_id));
            }
            let account = store.require_account()?;
            if !device && account.name.to_lowercase() == lower {
                return Ok(Some(HashSet::from([account.principal_id.to_string()])));
            }
            if members.is_none() {
                let listed = super::api(store)?.members().map_err(|e| {
                    anyhow::anyhow!(
                        "{what} names are looked up on the server, which did not answer ({e}); \
                         give the {what}'s id instead"
                    )
                })?;
                members = Some(listed);
            }
            let found: HashSet<String> = members
                .iter()
                .flatten()
                .filter(|m| {
                    let name = if device {
                        m.device.as_deref()
                    } else {
                        Some(m.name.as_str())
                    };
                    name.is_some_and(|n| n.to_lowercase() == lower)
                })
                .map(|m| m.id.to_string())
                .collect();
            if found.is_empty() {
                return Err(Failure::NotFound(format!(
                    "no {what} {text:?}; `fieldsync enumerator list` shows every enumerator and device"
                ))
                .into());
            }
            Ok(Some(found))
        };
        let device = pick(self.device.as_deref(), "device", true)?;
        let enumerator = pick(self.enumerator.as_deref(), "enumerator", false)?;
        Ok(match (device, enumerator) {
            (Some(d), Some(e)) => Some(d.intersection(&e).cloned().collect()),
            (d, e) => d.or(e),
        })
    }
}
