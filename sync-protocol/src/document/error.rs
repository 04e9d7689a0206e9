//! The one error type of the document module, so callers match on what went wrong with a
//! document rather than on Automerge's internals.

/// What went wrong while creating, editing, loading or reading a document.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The bytes are not a saved Automerge document.
    #[error("cannot load the document: {0}")]
    Load(#[source] automerge::AutomergeError),
    /// The bytes are not one Automerge change.
    #[error("malformed change bytes: {0}")]
    BadChange(#[source] automerge::LoadChangeError),
    /// Automerge refused an operation or a set of changes.
    #[error("automerge refused the operation: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// A key the schema requires is absent (for example, only part of a document's changes
    /// were applied).
    #[error("the document has no `{field}`; it is incomplete or was not written by fieldsync")]
    MissingField {
        /// The key path, e.g. `survey_id` or `versions.3.definition`.
        field: String,
    },
    /// A key holds a value of the wrong Automerge type.
    #[error(
        "`{field}` holds {found}, expected {expected}; the document was written by an incompatible peer"
    )]
    WrongType {
        /// The key path.
        field: String,
        /// What the schema requires.
        expected: &'static str,
        /// What the document holds.
        found: String,
    },
    /// A key holds a value of the right type that does not make sense.
    #[error("`{field}` is not valid: {reason}")]
    BadValue {
        /// The key path.
        field: String,
        /// Why the value is refused.
        reason: String,
    },
    /// The document is of another kind (a survey opened as a response, or the reverse).
    #[error("the document is a {found} document, expected a {expected} document")]
    WrongKind {
        /// The kind this type handles.
        expected: &'static str,
        /// The kind the document says it is.
        found: String,
    },
    /// The document was written with a newer layout than this build understands.
    #[error(
        "the document uses schema {found}, this build reads up to schema {supported}; upgrade fieldsync"
    )]
    UnsupportedSchema {
        /// The document's schema.
        found: i64,
        /// The newest schema this build reads.
        supported: i64,
    },
    /// A question path (`REPEAT#ID/QUESTION`), a question name or a repeat instance id given
    /// to an edit or a read cannot be used: it is malformed, reserved, or names an instance
    /// this replica does not hold (perhaps deleted on another replica and merged here).
    #[error("cannot use `{path}`: {reason}")]
    BadPath {
        /// The path, name or id as given.
        path: String,
        /// Why it is refused, and what to do instead.
        reason: String,
    },
    /// An edit was attempted on a document opened without a writer.
    #[error(
        "the document was opened without a writer; call `with_writer(actor, label)` before editing"
    )]
    NoWriter,
    /// A decimal answer is NaN or infinite, which no survey question accepts and no export can
    /// write.
    #[error("the answer to `{question}` is not a finite number")]
    NonFiniteDecimal {
        /// The question.
        question: String,
    },
    /// `publish` was asked to overwrite a version: published versions are immutable.
    #[error(
        "survey version {version} is already published and cannot change; publish a new version number"
    )]
    VersionExists {
        /// The version that exists.
        version: u32,
    },
}
