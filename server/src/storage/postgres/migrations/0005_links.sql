-- Survey links (web forms at /f/{token}). Only the token's SHA-256 and the password's
-- Argon2id hash are kept. Each link pushes its responses as its own principal.
CREATE TABLE links (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    survey_id     TEXT NOT NULL REFERENCES surveys(id),
    principal_id  TEXT NOT NULL REFERENCES principals(id),
    label         TEXT NOT NULL,
    -- 'link' (its token was given out) or 'invitations' (a survey's email invitations go
    -- through it, each with its own token; its own token was never shown).
    purpose       TEXT NOT NULL DEFAULT 'link',
    token_hash    BYTEA NOT NULL UNIQUE,
    password_hash TEXT,
    expires_at    BIGINT,
    max_responses INTEGER,
    single_use    BOOLEAN NOT NULL,
    responses     INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX links_org ON links(org_id, survey_id);

-- Email invitations: one per organisation, survey and address (its subject-index hash, as
-- the do-not-contact list keeps it); the address sealed with the organisation's key; the
-- personal and opt-out tokens as hashes once sent.
CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    survey_id    TEXT NOT NULL REFERENCES surveys(id),
    link_id      TEXT NOT NULL REFERENCES links(id),
    address_hash BYTEA NOT NULL,
    sealed       BYTEA NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    due_at       BIGINT NOT NULL,
    last_error   TEXT,
    token_hash   BYTEA UNIQUE,
    optout_hash  BYTEA UNIQUE,
    sent_at      BIGINT,
    used_at      BIGINT,
    -- The response submitted through it (a retry of the same submission is let through).
    used_by      TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (org_id, survey_id, address_hash)
);
CREATE INDEX invitations_due ON invitations(status, due_at);
