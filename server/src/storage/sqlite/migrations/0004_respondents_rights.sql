-- Schema 4: respondents' rights. A subject index to find a person's responses (keyed hashes,
-- never the identifiers), erasure that leaves nothing to resurrect, restriction, a
-- do-not-contact list, retention periods, notices that tell devices, and an audit log whose
-- entries are chained by MACs so a changed or removed entry is detected.

-- Storage numbers come from a counter, so a number is never handed out twice, even after the
-- newest changes were deleted (`max(seq) + 1` would reuse it).
INSERT INTO counters (name, value) VALUES ('seq', (SELECT coalesce(max(seq), 0) FROM changes))
ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value);

-- A restricted response is kept but frozen: no edits, out of exports and listings except an
-- admin's.
ALTER TABLE docs ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;

-- How long a survey's responses are kept after the server first received them; NULL: until
-- erased by hand.
ALTER TABLE surveys ADD COLUMN retention_ms INTEGER;

-- HMAC-SHA256, under a key derived from the organisation key, of each normalised identifier
-- a response holds (its survey's subject field and identifying questions).
CREATE TABLE subject_index (
    org_id    TEXT NOT NULL,
    subject   BLOB NOT NULL,
    doc_id    TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    PRIMARY KEY (org_id, subject, doc_id)
) STRICT;
CREATE INDEX subject_index_doc ON subject_index(doc_id);

-- People who asked not to be contacted, by the same keyed hash.
CREATE TABLE do_not_contact (
    org_id  TEXT NOT NULL,
    subject BLOB NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (org_id, subject)
) STRICT;

-- Erased responses, by id only: a push of one is refused for ever, so a device that was
-- offline cannot bring it back. `cause`: 'erasure' or 'retention'.
CREATE TABLE erased (
    doc_id    TEXT PRIMARY KEY,
    org_id    TEXT NOT NULL,
    erased_at INTEGER NOT NULL,
    cause     TEXT NOT NULL
) STRICT;

-- What devices must apply to their own copies, numbered from the relay sequence so that they
-- arrive in order with the changes, after the cursor a device holds.
CREATE TABLE notices (
    relay  INTEGER PRIMARY KEY,
    org_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    kind   TEXT NOT NULL CHECK (kind IN ('erased', 'restricted', 'unrestricted'))
) STRICT;
CREATE INDEX notices_org ON notices(org_id, relay);

-- The audit chain: `mac` is an HMAC (under a key derived from the organisation key, or the
-- master key for entries of no organisation) over the entry and `prev`, the previous entry's
-- mac in the same chain. Entries recorded before this schema have none and are reported as
-- unchained. The head says where each chain ends, so removing its last entries shows too.
ALTER TABLE audit ADD COLUMN prev BLOB;
ALTER TABLE audit ADD COLUMN mac BLOB;
CREATE TABLE audit_heads (
    chain   TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL,
    mac     BLOB NOT NULL,
    entries INTEGER NOT NULL
) STRICT;
-- The processing record of a response: the audit entries about it.
CREATE INDEX audit_target ON audit(org_id, target);

-- Responses stored before this schema are checked again once, so that the subject index
-- holds their identifiers too (settling them again changes nothing else).
INSERT INTO materialize_queue (doc_id, org_id, seq)
     SELECT d.id, d.org_id, coalesce((SELECT max(c.seq) FROM changes c WHERE c.doc_id = d.id), 0)
       FROM docs d
      WHERE true -- (SQLite needs a WHERE before an upsert's ON CONFLICT after a FROM)
ON CONFLICT (doc_id) DO NOTHING;
