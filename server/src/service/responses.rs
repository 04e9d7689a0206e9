//! Reading responses: who sees which (a device only its own, of surveys assigned to it), one
//! response as stored, and what an export holds.

use fieldsync_protocol::api::{MemberInfo, ResponsePage, ResponseView, Role, time_bound};
use fieldsync_protocol::document::Status;
use fieldsync_protocol::survey::Survey;

use super::parse_id;
use crate::auth::{Caller, READERS};
use crate::error::ApiError;
use crate::storage::{Db, ResponseQuery};

/// The owner a caller is limited to: an enumerator device sees only the documents it made.
pub fn owner_scope(caller: &Caller) -> Option<String> {
    (caller.role == Role::Enumerator).then(|| caller.principal_id.clone())
}

/// The survey must exist in the caller's organisation (and be assigned, for a device).
pub async fn visible_survey(db: &Db, caller: &Caller, survey_id: &str) -> Result<(), ApiError> {
    let enumerator = owner_scope(caller);
    db.survey(&caller.org_id, survey_id, enumerator.as_deref())
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::NotFound("no such survey; run `fieldsync survey list`".into()))
}

/// Filters of a listing, as the caller gave them.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub status: Option<String>,
    pub invalid_only: bool,
    pub conflicted_only: bool,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// One page of a survey's responses the caller may see.
pub async fn list(
    db: &Db,
    caller: &Caller,
    survey_id: &str,
    listing: Listing,
) -> Result<ResponsePage, ApiError> {
    let survey_id = parse_id(survey_id, "survey")?;
    visible_survey(db, caller, &survey_id).await?;
    // Validated, and named as stored (`reviewed`, the old name, asks for `approved`).
    let status = match &listing.status {
        Some(s) => Some(
            s.parse::<Status>()
                .map_err(|_| {
                    ApiError::Invalid(format!(
                        "unknown status {s:?}; use one of {}",
                        Status::names()
                    ))
                })?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    Ok(db
        .responses(ResponseQuery {
            org_id: caller.org_id.clone(),
            survey_id,
            status,
            owner: owner_scope(caller),
            invalid_only: listing.invalid_only,
            conflicted_only: listing.conflicted_only,
            include_restricted: caller.role == Role::Admin,
            after: listing.after,
            limit: listing.limit.unwrap_or(500).clamp(1, 5000),
        })
        .await?)
}

/// One response, decrypted, if the caller may see it and it is readable.
pub async fn show(db: &Db, caller: &Caller, doc_id: &str) -> Result<ResponseView, ApiError> {
    let id = parse_id(doc_id, "response")?;
    let owner = owner_scope(caller);
    let summary = db
        .response(&caller.org_id, &id, owner.as_deref())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no response {id} is visible to you")))?;
    if summary.restricted && caller.role != Role::Admin {
        return Err(ApiError::Forbidden(format!(
            "response {id} is restricted at the respondent's request; only an admin can see it until the restriction is lifted"
        )));
    }
    let warnings = summary.warnings();
    match (summary.view, summary.broken) {
        (Some(mut view), None) => {
            view.warnings = warnings;
            Ok(view)
        }
        (_, Some(reason)) => Err(ApiError::Invalid(format!(
            "response {id} is stored but cannot be read: {reason}"
        ))),
        (None, None) => Err(ApiError::Unavailable(format!(
            "response {id} was received and is still being processed; try again in a moment"
        ))),
    }
}

/// What an export of a survey holds, if the caller may export it: the survey's id, and its
/// question names across every version in form order (the first version's order, then
/// questions added by later versions where they first appear).
pub async fn export_columns(
    db: &Db,
    caller: &Caller,
    survey_id: &str,
) -> Result<(String, Vec<String>), ApiError> {
    caller.require(READERS, "export responses")?;
    let survey_id = parse_id(survey_id, "survey")?;
    visible_survey(db, caller, &survey_id).await?;
    let mut columns: Vec<String> = Vec::new();
    for json in db.survey_definitions(&caller.org_id, &survey_id).await? {
        let survey = Survey::parse_json(&json)
            .map_err(|e| ApiError::Internal(format!("stored definition does not parse: {e}")))?;
        // Answers inside repeats are not columns of the main table (`fieldsync export`
        // writes them as tables of their own, from the JSON Lines export).
        for q in survey.answerable().filter(|q| q.repeat.is_none()) {
            if !columns.iter().any(|c| c == &q.name) {
                columns.push(q.name.clone());
            }
        }
    }
    Ok((survey_id, columns))
}

/// Which responses an export holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportFilter {
    statuses: Vec<Status>,
    /// Created at or after, ms since the epoch.
    since: Option<i64>,
    /// Created before, ms since the epoch.
    until: Option<i64>,
    /// Only responses these principals (devices or members) created.
    collectors: Option<std::collections::HashSet<String>>,
}

impl ExportFilter {
    /// The filter of an export's query parameters; each bad value is refused with what to
    /// write instead. `device` and `enumerator` are looked up among `members` (by id, id
    /// prefix, device name or name).
    pub fn parse(
        status: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
        who: Collectors<'_>,
    ) -> Result<Self, ApiError> {
        let statuses = match status.map(str::trim) {
            None | Some("") => Status::ALL
                .into_iter()
                .filter(|s| s.is_collected())
                .collect(),
            Some("all") => Status::ALL.to_vec(),
            Some(list) => list
                .split(',')
                .map(|s| {
                    s.trim().parse::<Status>().map_err(|_| {
                        ApiError::Invalid(format!(
                            "unknown status {:?}; use one or more of {} (comma-separated), or all",
                            s.trim(),
                            Status::names()
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let bound = |text: &str, what: &str, end_of_day| {
            time_bound(text, end_of_day).map_err(|e| ApiError::Invalid(format!("{what} {e}")))
        };
        let since = since.map(|s| bound(s, "since", false)).transpose()?;
        let until = until.map(|s| bound(s, "until", true)).transpose()?;
        if let (Some(a), Some(b)) = (since, until)
            && a >= b
        {
            return Err(ApiError::Invalid(
                "since is not before until; nothing could match".into(),
            ));
        }
        Ok(Self {
            statuses,
            since,
            until,
            collectors: who.resolve()?,
        })
    }

    /// Whether only statuses narrow this export (so the index can count its rows).
    pub fn statuses_only(&self) -> Option<&[Status]> {
        (self.since.is_none() && self.until.is_none() && self.collectors.is_none())
            .then_some(&self.statuses[..])
    }

    /// Whether `r` belongs in the export.
    pub fn admits(&self, r: &ResponseView) -> bool {
        let status_ok = r
            .status
            .parse::<Status>()
            .is_ok_and(|s| self.statuses.contains(&s));
        status_ok
            && self.since.is_none_or(|t| r.created_at >= t)
            && self.until.is_none_or(|t| r.created_at < t)
            && self
                .collectors
                .as_ref()
                .is_none_or(|c| c.contains(&r.author_device))
    }
}

/// Who an export is narrowed to: a device and an enumerator, as a user typed them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Collectors<'a> {
    pub device: Option<&'a str>,
    pub enumerator: Option<&'a str>,
    pub members: &'a [MemberInfo],
}

impl Collectors<'_> {
    /// The ids of the principals both filters admit, `None` when neither is given.
    fn resolve(&self) -> Result<Option<std::collections::HashSet<String>>, ApiError> {
        let pick = |text: Option<&str>, what: &str, name_of: fn(&MemberInfo) -> Option<&str>| {
            let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
                return Ok(None);
            };
            let lower = text.to_lowercase();
            let ids: std::collections::HashSet<String> = self
                .members
                .iter()
                .filter(|m| {
                    let id = m.id.to_string();
                    id == lower
                        || (lower.len() >= 4 && id.starts_with(&lower))
                        || name_of(m).is_some_and(|n| n.to_lowercase() == lower)
                })
                .map(|m| m.id.to_string())
                .collect();
            if ids.is_empty() {
                return Err(ApiError::Invalid(format!(
                    "no {what} {text:?} in this organisation; `fieldsync enumerator list` shows \
                     every enumerator with its device"
                )));
            }
            Ok(Some(ids))
        };
        let device = pick(self.device, "device", |m| m.device.as_deref())?;
        let enumerator = pick(self.enumerator, "enumerator", |m| Some(m.name.as_str()))?;
        Ok(match (device, enumerator) {
            (Some(d), Some(e)) => Some(d.intersection(&e).cloned().collect()),
            (d, e) => d.or(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(status: &str, created_at: i64, device: &str) -> ResponseView {
        ResponseView {
            id: uuid::Uuid::nil(),
            survey_id: uuid::Uuid::nil(),
            survey_version: 1,
            author_device: device.into(),
            created_at,
            updated_at: created_at,
            status: status.into(),
            answers: Default::default(),
            errors: Vec::new(),
            conflicts: Vec::new(),
            warnings: Vec::new(),
            review_comment: None,
        }
    }

    #[test]
    fn exports_hold_handed_in_responses_unless_asked_otherwise() {
        let all = ExportFilter::parse(None, None, None, Collectors::default()).expect("filter");
        for (status, admitted) in [
            ("draft", false),
            ("discarded", false),
            ("submitted", true),
            ("approved", true),
            ("reviewed", true),
            ("edited", true),
        ] {
            assert_eq!(all.admits(&view(status, 0, "d")), admitted, "{status}");
        }
        let drafts = ExportFilter::parse(Some("draft,rejected"), None, None, Collectors::default())
            .expect("f");
        assert!(drafts.admits(&view("draft", 0, "d")));
        assert!(!drafts.admits(&view("submitted", 0, "d")));
        assert!(
            ExportFilter::parse(Some("all"), None, None, Collectors::default())
                .expect("f")
                .admits(&view("discarded", 0, "d"))
        );
        let err =
            ExportFilter::parse(Some("draft,done"), None, None, Collectors::default()).unwrap_err();
        assert!(err.to_string().contains("\"done\""), "{err}");
    }

    #[test]
    fn dates_bound_the_collection_time_and_until_includes_its_day() {
        // 2026-12-01T00:00:00Z and the day after.
        let (d1, d2) = (1_796_083_200_000, 1_796_169_600_000);
        let f = ExportFilter::parse(
            None,
            Some("2026-12-01"),
            Some("2026-12-01"),
            Collectors::default(),
        )
        .expect("filter");
        assert!(f.admits(&view("submitted", d1, "d")));
        assert!(f.admits(&view("submitted", d2 - 1, "d")));
        assert!(!f.admits(&view("submitted", d2, "d")));
        assert!(!f.admits(&view("submitted", d1 - 1, "d")));
        let f = ExportFilter::parse(None, Some("2026-12-01T01:00:00+01:00"), None, none())
            .expect("filter");
        assert!(f.admits(&view("submitted", d1, "t7")));
        assert!(!f.admits(&view("submitted", d1 - 1, "t7")));
        assert!(ExportFilter::parse(None, Some("yesterday-ish"), None, none()).is_err());
        assert!(ExportFilter::parse(None, Some("2026-12-02"), Some("2026-12-01"), none()).is_err());
    }

    fn none() -> Collectors<'static> {
        Collectors::default()
    }

    fn member(n: u128, name: &str, device: Option<&str>) -> MemberInfo {
        MemberInfo {
            id: uuid::Uuid::from_u128(n),
            name: name.into(),
            role: Role::Enumerator,
            created_at: 0,
            revoked: false,
            device: device.map(Into::into),
        }
    }

    #[test]
    fn devices_and_enumerators_are_found_by_name_or_id() {
        let members = [
            member(1, "Amina", Some("tablet-07")),
            member(2, "Amina", Some("tablet-09")),
            member(3, "Baraka", None),
        ];
        let id = |n: u128| uuid::Uuid::from_u128(n).to_string();
        let filter = |device, enumerator| {
            ExportFilter::parse(
                None,
                None,
                None,
                Collectors {
                    device,
                    enumerator,
                    members: &members,
                },
            )
        };
        // Both of Amina's devices, by her name in any case.
        let f = filter(None, Some("amina")).expect("filter");
        assert!(f.admits(&view("submitted", 0, &id(1))) && f.admits(&view("submitted", 0, &id(2))));
        assert!(!f.admits(&view("submitted", 0, &id(3))));
        assert!(f.statuses_only().is_none());
        // One device by its name; both filters together narrow to what both admit.
        let f = filter(Some("tablet-09"), Some("Amina")).expect("filter");
        assert!(
            !f.admits(&view("submitted", 0, &id(1))) && f.admits(&view("submitted", 0, &id(2)))
        );
        let third = id(3);
        let f = filter(Some(&third), None).expect("filter");
        assert!(f.admits(&view("submitted", 0, &id(3))));
        let e = filter(None, Some("Chiku")).unwrap_err().to_string();
        assert!(
            e.contains("no enumerator \"Chiku\"") && e.contains("enumerator list"),
            "{e}"
        );
        assert!(filter(Some("tablet-01"), None).is_err());
    }
}
