-- Schema 5: attachments (files answering media questions). See `storage/media.rs`.

-- One stored file per organisation and content: `address` is HMAC-SHA256 of the file's
-- SHA-256 under a key derived from the organisation key, so equal files are stored once
-- within an organisation and cannot be recognised across organisations. Its chunks are
-- sealed with the file's own data key; `received` counts the chunks stored, in order.
CREATE TABLE blobs (
    org_id     TEXT NOT NULL,
    address    BLOB NOT NULL,
    size       INTEGER NOT NULL,
    chunks     INTEGER NOT NULL,
    received   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, address)
) STRICT;

CREATE TABLE blob_chunks (
    org_id  TEXT NOT NULL,
    address BLOB NOT NULL,
    idx     INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (org_id, address, idx)
) STRICT;

-- A response's attachment, by the name its answer holds: which file, and that file's data
-- key wrapped by the response's own data key (so erasing the response, which deletes its
-- key and these rows, erases its files). `referenced`: NULL until the response is checked
-- with it, then whether its answers still name it (0: released, deleted by the sweep).
CREATE TABLE attachments (
    org_id      TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    question    TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    address     BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    referenced  INTEGER,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, doc_id, name)
) STRICT;
CREATE INDEX attachments_blob ON attachments(org_id, address);
CREATE INDEX attachments_released ON attachments(referenced, created_at);
