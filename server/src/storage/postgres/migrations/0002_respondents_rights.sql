-- Schema 2: respondents' rights, as SQLite's schema 4 (see its comments): the subject index,
-- the do-not-contact list, erased ids, restriction, retention, notices for devices, and the
-- chained audit log. Storage numbers already come from an identity (never reused).

ALTER TABLE docs ADD COLUMN restricted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE surveys ADD COLUMN retention_ms BIGINT;

CREATE TABLE subject_index (
    org_id    TEXT NOT NULL,
    subject   BYTEA NOT NULL,
    doc_id    TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    PRIMARY KEY (org_id, subject, doc_id)
);
CREATE INDEX subject_index_doc ON subject_index(doc_id);

CREATE TABLE do_not_contact (
    org_id  TEXT NOT NULL,
    subject BYTEA NOT NULL,
    at      BIGINT NOT NULL,
    PRIMARY KEY (org_id, subject)
);

CREATE TABLE erased (
    doc_id    TEXT PRIMARY KEY,
    org_id    TEXT NOT NULL,
    erased_at BIGINT NOT NULL,
    cause     TEXT NOT NULL
);

CREATE TABLE notices (
    relay  BIGINT PRIMARY KEY,
    org_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    kind   TEXT NOT NULL CHECK (kind IN ('erased', 'restricted', 'unrestricted'))
);
CREATE INDEX notices_org ON notices(org_id, relay);

ALTER TABLE audit ADD COLUMN prev BYTEA;
ALTER TABLE audit ADD COLUMN mac BYTEA;
CREATE TABLE audit_heads (
    chain   TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL,
    mac     BYTEA NOT NULL,
    entries BIGINT NOT NULL
);
-- The processing record of a response: the audit entries about it.
CREATE INDEX audit_target ON audit(org_id, target);

-- Responses stored before this schema are checked again once, so that the subject index
-- holds their identifiers too (settling them again changes nothing else).
INSERT INTO materialize_queue (doc_id, org_id, seq)
     SELECT d.id, d.org_id, coalesce((SELECT max(c.seq) FROM changes c WHERE c.doc_id = d.id), 0)
       FROM docs d
ON CONFLICT (doc_id) DO NOTHING;
