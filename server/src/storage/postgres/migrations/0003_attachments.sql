-- Schema 3: attachments (files answering media questions). See `storage/media.rs` and the
-- SQLite migration 0005, which this mirrors.

CREATE TABLE blobs (
    org_id     TEXT NOT NULL,
    address    BYTEA NOT NULL,
    size       BIGINT NOT NULL,
    chunks     BIGINT NOT NULL,
    received   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, address)
);

CREATE TABLE blob_chunks (
    org_id  TEXT NOT NULL,
    address BYTEA NOT NULL,
    idx     BIGINT NOT NULL,
    data    BYTEA NOT NULL,
    PRIMARY KEY (org_id, address, idx)
);

CREATE TABLE attachments (
    org_id      TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    question    TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    address     BYTEA NOT NULL,
    wrapped_key BYTEA NOT NULL,
    referenced  BOOLEAN,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, doc_id, name)
);
CREATE INDEX attachments_blob ON attachments(org_id, address);
CREATE INDEX attachments_released ON attachments(referenced, created_at);
