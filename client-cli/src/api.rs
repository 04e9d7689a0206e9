//! Typed calls of the server's management API (sessions, members, surveys, exports), one
//! method per route, so the CLI and a future app never spell a path or a body twice.

use fieldsync_protocol::api::{
    Assignment, CreatedLink, CreatedMember, EnrollRequest, InvitationReport, InvitationsAdded,
    LinkInfo, LoginRequest, MediaInfo, MemberInfo, NewEnumerator, NewInvitations, NewLink,
    NewMember, Published, SessionGrant, StatusChange, SurveyInfo, SurveyVersion, WhoAmI,
};
use fieldsync_protocol::wire::SurveyStatus;
use reqwest::Method;
use reqwest::blocking::Response;
use uuid::Uuid;

use crate::client::{ApiClient, ClientError};

/// The export formats the server writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }
}

/// Which responses an export asks for; the server decides (by default: every handed-in
/// response, no drafts, nothing discarded).
#[derive(Clone, Debug, Default)]
pub struct ExportFilter {
    /// Status names (`all` for every one); empty for the default.
    pub statuses: Vec<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub device: Option<String>,
    pub enumerator: Option<String>,
    /// The zone of the CSV's times (`UTC` when not given).
    pub tz: Option<String>,
}

impl ExportFilter {
    /// The query parameters after `format`, each starting with `&`.
    fn query(&self) -> String {
        let mut q = String::new();
        let status = (!self.statuses.is_empty()).then(|| self.statuses.join(","));
        for (key, value) in [
            ("status", &status),
            ("since", &self.since),
            ("until", &self.until),
            ("device", &self.device),
            ("enumerator", &self.enumerator),
            ("tz", &self.tz),
        ] {
            if let Some(v) = value {
                q.push('&');
                q.push_str(key);
                q.push('=');
                q.push_str(&percent_encode(v));
            }
        }
        q
    }
}

/// `text` as a URL query value: every byte but unreserved ones as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ApiClient {
    /// `POST /v1/enroll`: a device's enrollment code for a device token.
    pub fn enroll(&self, req: &EnrollRequest) -> Result<SessionGrant, ClientError> {
        self.send_json(Method::POST, "/v1/enroll", req)
    }

    /// `POST /v1/login`: a member's one-time login token for a session token.
    pub fn login(&self, req: &LoginRequest) -> Result<SessionGrant, ClientError> {
        self.send_json(Method::POST, "/v1/login", req)
    }

    /// `POST /v1/logout`: revoke the token this client uses.
    pub fn logout(&self) -> Result<(), ClientError> {
        self.send(self.request(Method::POST, "/v1/logout"))?;
        Ok(())
    }

    /// `GET /v1/me`.
    pub fn me(&self) -> Result<WhoAmI, ClientError> {
        self.get_json("/v1/me")
    }

    /// `POST /v1/members`.
    pub fn create_member(&self, req: &NewMember) -> Result<CreatedMember, ClientError> {
        self.send_json(Method::POST, "/v1/members", req)
    }

    /// `GET /v1/members`.
    pub fn members(&self) -> Result<Vec<MemberInfo>, ClientError> {
        self.get_json("/v1/members")
    }

    /// `POST /v1/members/{id}/revoke`.
    pub fn revoke_member(&self, id: &Uuid) -> Result<(), ClientError> {
        self.send(self.request(Method::POST, &format!("/v1/members/{id}/revoke")))?;
        Ok(())
    }

    /// `POST /v1/enumerators`.
    pub fn create_enumerator(&self, req: &NewEnumerator) -> Result<CreatedMember, ClientError> {
        self.send_json(Method::POST, "/v1/enumerators", req)
    }

    /// `POST /v1/enumerators/{id}/code`: a new one-time enrollment code.
    pub fn reissue_code(&self, id: &Uuid) -> Result<CreatedMember, ClientError> {
        self.send_json(Method::POST, &format!("/v1/enumerators/{id}/code"), &())
    }

    /// `POST /v1/surveys`: publish a definition as the next version of its survey.
    pub fn publish_survey(&self, definition: String) -> Result<Published, ClientError> {
        self.post_text("/v1/surveys", definition)
    }

    /// `GET /v1/surveys`.
    pub fn surveys(&self) -> Result<Vec<SurveyInfo>, ClientError> {
        self.get_json("/v1/surveys")
    }

    /// `GET /v1/surveys/{id}`.
    pub fn survey(&self, id: &Uuid) -> Result<SurveyInfo, ClientError> {
        self.get_json(&format!("/v1/surveys/{id}"))
    }

    /// A survey by id or form id, as the server lists it.
    pub fn find_survey(&self, key: &str) -> Result<SurveyInfo, ClientError> {
        if let Ok(id) = Uuid::parse_str(key) {
            return self.survey(&id);
        }
        self.surveys()?
            .into_iter()
            .find(|s| s.form_id == key)
            .ok_or_else(|| ClientError::NotFound {
                message: format!(
                    "no survey {key:?} on the server; `fieldsync survey list` shows the surveys"
                ),
            })
    }

    /// `GET /v1/surveys/{id}/versions/{n}`.
    pub fn survey_version(&self, id: &Uuid, version: u32) -> Result<SurveyVersion, ClientError> {
        self.get_json(&format!("/v1/surveys/{id}/versions/{version}"))
    }

    /// `POST /v1/surveys/{id}/assignments`.
    pub fn assign(&self, id: &Uuid, enumerator_id: Uuid) -> Result<(), ClientError> {
        self.send_json_no_content(
            Method::POST,
            &format!("/v1/surveys/{id}/assignments"),
            &Assignment { enumerator_id },
        )
    }

    /// `POST /v1/surveys/{id}/links`.
    pub fn create_link(&self, survey: &Uuid, req: &NewLink) -> Result<CreatedLink, ClientError> {
        self.send_json(Method::POST, &format!("/v1/surveys/{survey}/links"), req)
    }

    /// `GET /v1/links`, of one survey or all.
    pub fn links(&self, survey: Option<&Uuid>) -> Result<Vec<LinkInfo>, ClientError> {
        match survey {
            Some(id) => self.get_json(&format!("/v1/links?survey={id}")),
            None => self.get_json("/v1/links"),
        }
    }

    /// `POST /v1/surveys/{id}/invitations`.
    pub fn invite(
        &self,
        survey: &Uuid,
        req: &NewInvitations,
    ) -> Result<InvitationsAdded, ClientError> {
        self.send_json(
            Method::POST,
            &format!("/v1/surveys/{survey}/invitations"),
            req,
        )
    }

    /// `GET /v1/surveys/{id}/invitations`.
    pub fn invitations(&self, survey: &Uuid) -> Result<InvitationReport, ClientError> {
        self.get_json(&format!("/v1/surveys/{survey}/invitations"))
    }

    /// `POST /v1/links/{id}/revoke`.
    pub fn revoke_link(&self, id: &Uuid) -> Result<(), ClientError> {
        self.send(self.request(Method::POST, &format!("/v1/links/{id}/revoke")))?;
        Ok(())
    }

    /// `PUT /v1/surveys/{id}/status`.
    pub fn set_survey_status(&self, id: &Uuid, status: SurveyStatus) -> Result<(), ClientError> {
        self.send_json_no_content(
            Method::PUT,
            &format!("/v1/surveys/{id}/status"),
            &StatusChange { status },
        )
    }

    /// `GET /v1/surveys/{id}/export`: the body streams; read it with [`std::io::Read`].
    /// `GET /v1/responses/{id}/media`: a response's files.
    pub fn media(&self, id: &Uuid) -> Result<Vec<MediaInfo>, ClientError> {
        self.get_json(&format!("/v1/responses/{id}/media"))
    }

    /// `GET /v1/responses/{id}/media/{name}`: one file, streamed.
    pub fn media_file(&self, id: &Uuid, name: &str) -> Result<Response, ClientError> {
        self.get_stream(&format!("/v1/responses/{id}/media/{name}"))
    }

    pub fn export(
        &self,
        id: &Uuid,
        format: ExportFormat,
        filter: &ExportFilter,
    ) -> Result<Response, ClientError> {
        self.get_stream(&format!(
            "/v1/surveys/{id}/export?format={}{}",
            format.as_str(),
            filter.query()
        ))
    }
}
