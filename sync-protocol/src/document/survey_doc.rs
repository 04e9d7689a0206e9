//! A survey's published versions as one Automerge document, so that a version published while
//! teams are in the field reaches every device through the same change-based sync as
//! responses, and older versions stay available for the drafts collected on them.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ROOT, ReadDoc, ScalarValue};
use uuid::Uuid;

use super::change::{commit_options, parse_changes, raw_changes_since};
use super::scalar::{Path, check_header, req_map, req_str, req_time};
use super::{DocError, SCHEMA_VERSION};

const KIND: &str = "survey";

/// A survey's identity and title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurveyMeta {
    /// The survey's id.
    pub survey_id: Uuid,
    /// The XLSForm `form_id`.
    pub form_id: String,
    /// The human title.
    pub title: String,
}

/// A published version, without its definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishedVersion {
    /// The version number.
    pub version: u32,
    /// When it was published, ms since the epoch.
    pub published_at: i64,
}

/// One survey document.
///
/// Publishing needs a writer (the publisher's per-install actor id); a document opened with
/// [`SurveyDoc::load`] or [`SurveyDoc::from_changes`] has none until
/// [`SurveyDoc::with_writer`].
///
/// A version is immutable once published: [`SurveyDoc::publish`] refuses a number this replica
/// already holds. Two replicas publishing the same number concurrently cannot be refused
/// offline; the merged document then shows one of them deterministically, so publishing is
/// left to one place (the server).
#[derive(Debug, Clone)]
pub struct SurveyDoc {
    doc: AutoCommit,
    writable: bool,
}

impl SurveyDoc {
    /// Creates a survey with no published version, as `actor`, at `now` (ms since the epoch).
    pub fn new(meta: &SurveyMeta, actor: impl Into<ActorId>, now: i64) -> Result<Self, DocError> {
        let mut doc = AutoCommit::new().with_actor(actor.into());
        doc.put(ROOT, "schema", SCHEMA_VERSION)?;
        doc.put(ROOT, "kind", KIND)?;
        doc.put(ROOT, "survey_id", meta.survey_id.hyphenated().to_string())?;
        doc.put(ROOT, "form_id", meta.form_id.as_str())?;
        doc.put(ROOT, "title", meta.title.as_str())?;
        doc.put_object(ROOT, "versions", ObjType::Map)?;
        doc.commit_with(commit_options(now));
        Ok(Self {
            doc,
            writable: true,
        })
    }

    /// Opens a document from the bytes of [`SurveyDoc::save`], without a writer.
    pub fn load(bytes: &[u8]) -> Result<Self, DocError> {
        let doc = AutoCommit::load(bytes).map_err(DocError::Load)?;
        check_header(&doc, KIND, SCHEMA_VERSION)?;
        Ok(Self {
            doc,
            writable: false,
        })
    }

    /// Builds a document from raw changes (all of them, starting with the creator's first),
    /// without a writer.
    pub fn from_changes<I, B>(changes: I) -> Result<Self, DocError>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let mut doc = AutoCommit::new();
        doc.apply_changes(parse_changes(changes)?)?;
        check_header(&doc, KIND, SCHEMA_VERSION)?;
        Ok(Self {
            doc,
            writable: false,
        })
    }

    /// Sets the actor (the publisher's per-install id) of the following edits.
    pub fn with_writer(mut self, actor: impl Into<ActorId>) -> Self {
        self.doc.set_actor(actor.into());
        self.writable = true;
        self
    }

    /// The whole document in Automerge's compact form.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Publishes `version` with its definition (the survey as JSON text) at `now`.
    pub fn publish(
        &mut self,
        version: u32,
        definition_json: &str,
        now: i64,
    ) -> Result<ChangeHash, DocError> {
        if !self.writable {
            return Err(DocError::NoWriter);
        }
        let key = version.to_string();
        let outcome = (|| {
            let versions = req_map(&self.doc, &ROOT, Path("", "versions"))?;
            if self.doc.get(&versions, key.as_str())?.is_some() {
                return Err(DocError::VersionExists { version });
            }
            let entry = self.doc.put_object(&versions, key.as_str(), ObjType::Map)?;
            // A scalar string, not a Text object: the definition is replaced as a whole, never
            // edited character by character, and a scalar is far cheaper to store and read.
            self.doc.put(&entry, "definition", definition_json)?;
            self.doc
                .put(&entry, "published_at", ScalarValue::Timestamp(now))?;
            Ok(())
        })();
        match outcome {
            Ok(()) => self.doc.commit_with(commit_options(now)).ok_or_else(|| {
                // Unreachable in practice (the puts above are never no-ops on a fresh map),
                // but an edit that produced no change must not claim it did.
                DocError::BadValue {
                    field: format!("versions.{version}"),
                    reason: "publishing produced no change".to_owned(),
                }
            }),
            Err(e) => {
                self.doc.rollback();
                Err(e)
            }
        }
    }

    // ---- reads ----

    /// The survey's identity and title.
    pub fn meta(&self) -> Result<SurveyMeta, DocError> {
        let doc = &self.doc;
        let survey_id = req_str(doc, &ROOT, Path("", "survey_id"))?;
        let survey_id = Uuid::parse_str(&survey_id).map_err(|e| DocError::BadValue {
            field: "survey_id".to_owned(),
            reason: e.to_string(),
        })?;
        Ok(SurveyMeta {
            survey_id,
            form_id: req_str(doc, &ROOT, Path("", "form_id"))?,
            title: req_str(doc, &ROOT, Path("", "title"))?,
        })
    }

    /// Every published version, oldest first.
    pub fn versions(&self) -> Result<Vec<PublishedVersion>, DocError> {
        let doc = &self.doc;
        let versions = req_map(doc, &ROOT, Path("", "versions"))?;
        let mut out = Vec::new();
        for item in doc.map_range(&versions, ..) {
            let key: &str = &item.key;
            let version = parse_version(key)?;
            let entry = req_map(doc, &versions, Path("versions", key))?;
            let path = format!("versions.{key}");
            let published_at = req_time(doc, &entry, Path(&path, "published_at"))?;
            out.push(PublishedVersion {
                version,
                published_at,
            });
        }
        // Keys sort as strings ("10" before "9"); versions are numbers.
        out.sort_by_key(|v| v.version);
        Ok(out)
    }

    /// The definition JSON of `version`, if it is published.
    pub fn definition(&self, version: u32) -> Result<Option<String>, DocError> {
        let doc = &self.doc;
        let versions = req_map(doc, &ROOT, Path("", "versions"))?;
        let key = version.to_string();
        if doc.get(&versions, key.as_str())?.is_none() {
            return Ok(None);
        }
        let entry = req_map(doc, &versions, Path("versions", &key))?;
        let path = format!("versions.{key}");
        req_str(doc, &entry, Path(&path, "definition")).map(Some)
    }

    /// The highest published version number, if any.
    pub fn latest_version(&self) -> Result<Option<u32>, DocError> {
        let doc = &self.doc;
        let versions = req_map(doc, &ROOT, Path("", "versions"))?;
        let mut latest = None;
        for item in doc.map_range(&versions, ..) {
            let version = parse_version(&item.key)?;
            latest = latest.max(Some(version));
        }
        Ok(latest)
    }

    // ---- changes, for the sync engine ----

    /// The hashes of the newest changes.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Raw bytes of every change that is not an ancestor of `heads`, dependencies first.
    ///
    /// Hashes this document does not hold are ignored, so heads naming changes unknown here
    /// yield everything not provably held by the peer (harmless, since applying is
    /// idempotent, but wasteful): pass heads both sides know.
    pub fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<Vec<u8>> {
        raw_changes_since(&mut self.doc, heads)
    }

    /// Raw bytes of every change, dependencies first.
    pub fn all_changes(&mut self) -> Vec<Vec<u8>> {
        raw_changes_since(&mut self.doc, &[])
    }

    /// Applies raw changes; idempotent. A malformed change rejects the whole batch.
    pub fn apply_changes<I, B>(&mut self, changes: I) -> Result<(), DocError>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        self.doc.apply_changes(parse_changes(changes)?)?;
        Ok(())
    }

    /// Hashes of changes that applied changes depend on but this document does not have.
    pub fn missing_deps(&mut self) -> Vec<ChangeHash> {
        self.doc.get_missing_deps(&[])
    }

    /// Applies every change of `other` that this document lacks.
    pub fn merge(&mut self, other: &mut SurveyDoc) -> Result<(), DocError> {
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }
}

/// A `versions` key: the canonical decimal form of a u32 (so "07" cannot shadow "7").
fn parse_version(key: &str) -> Result<u32, DocError> {
    key.parse::<u32>()
        .ok()
        .filter(|v| v.to_string() == key)
        .ok_or_else(|| DocError::BadValue {
            field: format!("versions.{key}"),
            reason: "a version key must be a whole number from 0 to 4294967295".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn meta() -> SurveyMeta {
        SurveyMeta {
            survey_id: Uuid::from_u128(0xaa),
            form_id: "household_2025".to_owned(),
            title: "Household survey".to_owned(),
        }
    }

    fn created() -> SurveyDoc {
        SurveyDoc::new(&meta(), [7_u8; 16], T0).expect("create")
    }

    #[test]
    fn a_new_survey_has_its_meta_and_no_versions() {
        let doc = created();
        assert_eq!(doc.meta().expect("meta"), meta());
        assert_eq!(doc.versions().expect("versions"), vec![]);
        assert_eq!(doc.latest_version().expect("latest"), None);
        assert_eq!(doc.definition(1).expect("definition"), None);
    }

    #[test]
    fn publish_then_read() {
        // (versions published in this order, expected sorted list, expected latest)
        let cases: Vec<(Vec<u32>, Vec<u32>, Option<u32>)> = vec![
            (vec![1], vec![1], Some(1)),
            (vec![1, 2, 3], vec![1, 2, 3], Some(3)),
            // Numeric, not string, order: 10 after 9.
            (vec![9, 10, 2], vec![2, 9, 10], Some(10)),
            (vec![0, u32::MAX], vec![0, u32::MAX], Some(u32::MAX)),
        ];
        for (i, (publish, want, latest)) in cases.into_iter().enumerate() {
            let mut doc = created();
            for (n, v) in publish.iter().enumerate() {
                doc.publish(*v, &format!("{{\"version\":{v}}}"), T0 + n as i64)
                    .expect("publish");
            }
            let versions = doc.versions().expect("versions");
            let got: Vec<u32> = versions.iter().map(|v| v.version).collect();
            assert_eq!(got, want, "case {i}");
            assert_eq!(doc.latest_version().expect("latest"), latest, "case {i}");
            for (n, v) in publish.iter().enumerate() {
                let def = doc.definition(*v).expect("definition");
                assert_eq!(def, Some(format!("{{\"version\":{v}}}")), "case {i}");
                let at = versions
                    .iter()
                    .find(|p| p.version == *v)
                    .map(|p| p.published_at);
                assert_eq!(at, Some(T0 + n as i64), "case {i}");
            }
        }
    }

    #[test]
    fn a_published_version_is_immutable() {
        let mut doc = created();
        doc.publish(1, "{\"v\":1}", T0).expect("publish");
        let heads = doc.heads();
        let err = doc
            .publish(1, "{\"v\":\"changed\"}", T0 + 1)
            .expect_err("refused");
        assert!(matches!(err, DocError::VersionExists { version: 1 }));
        assert_eq!(doc.heads(), heads);
        assert_eq!(
            doc.definition(1).expect("definition").as_deref(),
            Some("{\"v\":1}")
        );
        // Still refused on another replica that received it.
        let mut other = SurveyDoc::from_changes(doc.all_changes())
            .expect("replica")
            .with_writer([8_u8; 16]);
        assert!(matches!(
            other.publish(1, "{}", T0 + 2),
            Err(DocError::VersionExists { version: 1 })
        ));
        other.publish(2, "{\"v\":2}", T0 + 2).expect("publish 2");
        doc.merge(&mut other).expect("merge");
        assert_eq!(doc.latest_version().expect("latest"), Some(2));
    }

    #[test]
    fn new_versions_travel_as_changes() {
        let mut server = created();
        let mut device = SurveyDoc::load(&server.save()).expect("load");
        let seen = device.heads();
        server.publish(1, "{}", T0 + 1).expect("publish");
        device
            .apply_changes(server.changes_since(&seen))
            .expect("apply");
        assert_eq!(device.heads(), server.heads());
        assert_eq!(
            device.definition(1).expect("definition").as_deref(),
            Some("{}")
        );
        assert!(matches!(
            device.publish(2, "{}", T0),
            Err(DocError::NoWriter)
        ));
    }

    #[test]
    fn unexpected_shapes_are_typed_errors() {
        let mut doc = created();
        doc.publish(1, "{}", T0).expect("publish");
        let tamper = |edit: &dyn Fn(&mut AutoCommit)| {
            let mut raw = AutoCommit::load(&doc.clone().save()).expect("raw");
            edit(&mut raw);
            SurveyDoc::load(&raw.save())
        };
        let versions_of = |d: &AutoCommit| req_map(d, &ROOT, Path("", "versions")).expect("map");
        let bad_key = tamper(&|d| {
            let v = versions_of(d);
            d.put_object(&v, "07", ObjType::Map).expect("put");
        })
        .expect("load");
        assert!(
            matches!(bad_key.versions(), Err(DocError::BadValue { field, .. }) if field == "versions.07")
        );
        assert!(matches!(
            bad_key.latest_version(),
            Err(DocError::BadValue { .. })
        ));
        let flat = tamper(&|d| {
            let v = versions_of(d);
            d.put(&v, "1", "{}").expect("put");
        })
        .expect("load");
        assert!(
            matches!(flat.definition(1), Err(DocError::WrongType { field, .. }) if field == "versions.1")
        );
        let text_def = tamper(&|d| {
            let v = versions_of(d);
            let (_, entry) = d.get(&v, "1").expect("get").expect("entry");
            d.put_object(&entry, "definition", ObjType::Text)
                .expect("put");
        })
        .expect("load");
        assert!(
            matches!(text_def.definition(1), Err(DocError::WrongType { field, .. }) if field == "versions.1.definition")
        );
        let no_time = tamper(&|d| {
            let v = versions_of(d);
            let (_, entry) = d.get(&v, "1").expect("get").expect("entry");
            d.delete(&entry, "published_at").expect("del");
        })
        .expect("load");
        assert!(
            matches!(no_time.versions(), Err(DocError::MissingField { field }) if field == "versions.1.published_at")
        );
        let bad_id = tamper(&|d| {
            d.put(ROOT, "survey_id", "x").expect("put");
        })
        .expect("load");
        assert!(matches!(bad_id.meta(), Err(DocError::BadValue { .. })));
        assert!(matches!(
            tamper(&|d| {
                d.put(ROOT, "kind", "response").expect("put");
            }),
            Err(DocError::WrongKind { .. })
        ));
    }
}
