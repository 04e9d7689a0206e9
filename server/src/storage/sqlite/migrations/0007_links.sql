-- Schema 7: survey links (web forms at /f/{token}). Only the token's SHA-256 and the
-- password's Argon2id hash are kept. Each link pushes its responses as its own principal.
CREATE TABLE links (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    survey_id     TEXT NOT NULL REFERENCES surveys(id),
    principal_id  TEXT NOT NULL REFERENCES principals(id),
    label         TEXT NOT NULL,
    -- 'link' (its token was given out) or 'invitations' (a survey's email invitations go
    -- through it, each with its own token; its own token was never shown).
    purpose       TEXT NOT NULL DEFAULT 'link',
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

-- Email invitations: one per organisation, survey and address (its subject-index hash, as
-- the do-not-contact list keeps it); the address sealed with the organisation's key; the
-- personal and opt-out tokens as hashes once sent.
CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    survey_id    TEXT NOT NULL REFERENCES surveys(id),
    link_id      TEXT NOT NULL REFERENCES links(id),
    address_hash BLOB NOT NULL,
    sealed       BLOB NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    due_at       INTEGER NOT NULL,
    last_error   TEXT,
    token_hash   BLOB UNIQUE,
    optout_hash  BLOB UNIQUE,
    sent_at      INTEGER,
    used_at      INTEGER,
    -- The response submitted through it (a retry of the same submission is let through).
    used_by      TEXT,
    created_at   INTEGER NOT NULL,
    UNIQUE (org_id, survey_id, address_hash)
) STRICT;
CREATE INDEX invitations_due ON invitations(status, due_at);
