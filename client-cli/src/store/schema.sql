-- fieldsync client store, schema 1. Every payload column holds a sealed (AES-256-GCM)
-- value; plaintext columns hold only ids, versions, statuses and counts.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

-- Survey documents received from the server (saved Automerge bytes, sealed).
CREATE TABLE surveys (
    id             TEXT PRIMARY KEY,
    status         TEXT NOT NULL,
    latest_version INTEGER NOT NULL,
    rev            INTEGER NOT NULL,
    doc            BLOB NOT NULL
) STRICT;

-- One row per response: its current merged state as a saved Automerge document (sealed).
CREATE TABLE docs (
    id             TEXT PRIMARY KEY,
    survey_id      TEXT NOT NULL,
    survey_version INTEGER NOT NULL,
    status         TEXT NOT NULL,
    error_count    INTEGER NOT NULL,
    conflict_count INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- why the server refused this response; retried at the next sync unless final
    rejected       TEXT,
    -- 1 when the refusal is final (malformed data): only an edit sends it again
    rejected_final INTEGER NOT NULL DEFAULT 0,
    rev            INTEGER NOT NULL,
    snapshot       BLOB NOT NULL
) STRICT;
CREATE INDEX docs_survey ON docs(survey_id, status);
-- The few refused responses, found without reading every response at each sync.
CREATE INDEX docs_rejected ON docs(rejected_final) WHERE rejected IS NOT NULL;

-- Local changes the server has not acknowledged yet (sealed raw Automerge changes).
CREATE TABLE outbox (
    id     INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL,
    hash   BLOB NOT NULL,
    change BLOB NOT NULL,
    UNIQUE (doc_id, hash)
) STRICT;
CREATE INDEX outbox_doc ON outbox(doc_id, id);
