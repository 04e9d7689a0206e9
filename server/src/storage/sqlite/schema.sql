-- fieldsync server schema, version 1, as first released. store::migrate applies it to a new
-- database and then runs migrations/ in order; never edit it, add a migration instead.
-- Every table that holds customer data carries org_id, and every query filters on it.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE orgs (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    region         TEXT NOT NULL,
    support_access INTEGER NOT NULL DEFAULT 0,
    -- the organisation key, wrapped by the instance's master key
    wrapped_key    BLOB NOT NULL,
    key_id         INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

-- People and devices. Support staff have no organisation (org_id NULL).
CREATE TABLE principals (
    id         TEXT PRIMARY KEY,
    org_id     TEXT REFERENCES orgs(id),
    role       TEXT NOT NULL CHECK (role IN ('admin','coordinator','ops','enumerator','support')),
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT,
    revoked_at INTEGER
) STRICT;
CREATE INDEX principals_org ON principals(org_id, role);

-- Credentials: only the SHA-256 of each opaque token is stored.
-- kind: 'login' (one-time, exchanged for a session), 'enroll' (one-time, exchanged for a
-- device token), 'session' and 'device' (revocable bearer tokens).
CREATE TABLE credentials (
    hash         BLOB PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals(id),
    kind         TEXT NOT NULL CHECK (kind IN ('login','enroll','session','device')),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    used_at      INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX credentials_principal ON credentials(principal_id);

CREATE TABLE surveys (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    form_id        TEXT NOT NULL,
    title          TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open','closing','closed')),
    latest_version INTEGER NOT NULL,
    -- the survey's Automerge document, written only by this server
    doc            BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (org_id, form_id)
) STRICT;

CREATE TABLE survey_versions (
    survey_id    TEXT NOT NULL REFERENCES surveys(id),
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (survey_id, version)
) STRICT;

CREATE TABLE assignments (
    survey_id    TEXT NOT NULL REFERENCES surveys(id),
    principal_id TEXT NOT NULL REFERENCES principals(id),
    PRIMARY KEY (survey_id, principal_id)
) STRICT;

-- One row per response document.
CREATE TABLE docs (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    survey_id      TEXT NOT NULL REFERENCES surveys(id),
    survey_version INTEGER NOT NULL,
    -- the principal that created the document: an enumerator sees the documents it owns
    owner_id       TEXT NOT NULL,
    -- the document's data key, wrapped by the organisation key
    wrapped_key    BLOB NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX docs_survey ON docs(org_id, survey_id);
CREATE INDEX docs_owner ON docs(org_id, owner_id);

-- Every Automerge change, encrypted with its document's key. seq is the sync cursor:
-- increasing across the instance, so it is also increasing within each organisation.
CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY,
    org_id  TEXT NOT NULL,
    doc_id  TEXT NOT NULL REFERENCES docs(id),
    hash    BLOB NOT NULL,
    origin  TEXT NOT NULL,
    payload BLOB NOT NULL,
    UNIQUE (doc_id, hash)
) STRICT;
CREATE INDEX changes_org_seq ON changes(org_id, seq);
-- Loading one document's changes in order (materialisation) must not walk the organisation.
CREATE INDEX changes_doc_seq ON changes(doc_id, seq);

-- What the background materialiser learnt about each response: plaintext columns hold only
-- what filters need; answers, errors and conflicts are in the encrypted summary.
CREATE TABLE response_index (
    doc_id          TEXT PRIMARY KEY REFERENCES docs(id),
    org_id          TEXT NOT NULL,
    survey_id       TEXT NOT NULL,
    survey_version  INTEGER NOT NULL,
    status          TEXT NOT NULL,
    error_count     INTEGER NOT NULL,
    conflict_count  INTEGER NOT NULL,
    -- set when the document could not be read at all (quarantined)
    broken          INTEGER NOT NULL DEFAULT 0,
    upto_seq        INTEGER NOT NULL,
    summary         BLOB NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
-- Listing and exporting walk a survey's responses in id order, page by page.
CREATE INDEX response_index_survey ON response_index(org_id, survey_id, doc_id);

-- Documents whose changes arrived after their last materialisation.
CREATE TABLE materialize_queue (
    doc_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    seq    INTEGER NOT NULL
) STRICT;

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    org_id     TEXT,
    at         INTEGER NOT NULL,
    actor_id   TEXT,
    actor_role TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    detail     TEXT
) STRICT;
CREATE INDEX audit_org ON audit(org_id, id);
