-- Schema 7: survey links (web forms at /f/{token}). Only the token's SHA-256 and the
-- password's Argon2id hash are kept. Each link pushes its responses as its own principal.
CREATE TABLE links (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    survey_id     TEXT NOT NULL REFERENCES surveys(id),
    principal_id  TEXT NOT NULL REFERENCES principals(id),
    label         TEXT NOT NULL,
    token_hash    BLOB NOT NULL UNIQUE,
    password_hash TEXT,
    expires_at    INTEGER,
    max_responses INTEGER,
    single_use    INTEGER NOT NULL,
    responses     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    revoked_at    INTEGER
) STRICT;
CREATE INDEX links_org ON links(org_id, survey_id);
