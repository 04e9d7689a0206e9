-- Schema 2: a pushed change is relayed only after the sandbox has checked that its document
-- still loads with it. `state` says where a change is (0 unchecked, 1 accepted, 2 refused,
-- 3 waiting for a change it depends on); `relay` is the pull cursor, handed out in the order
-- changes are settled (accepted or refused), so a change that waits blocks nobody.

ALTER TABLE changes ADD COLUMN state INTEGER NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN relay INTEGER;

-- Everything stored before this schema was relayed as it arrived: its cursor positions stay.
UPDATE changes SET state = 1, relay = seq;

-- Documents the old materialiser found unreadable are checked again, change by change, and
-- relayed only as far as they load.
UPDATE changes SET state = 0, relay = NULL
 WHERE doc_id IN (SELECT doc_id FROM response_index WHERE broken = 1);
INSERT INTO materialize_queue (doc_id, org_id, seq)
     SELECT doc_id, org_id, upto_seq FROM response_index WHERE broken = 1
ON CONFLICT (doc_id) DO NOTHING;

DROP INDEX changes_org_seq;
CREATE INDEX changes_org_relay ON changes(org_id, relay);
-- What the checker has not seen yet, by pusher, for a pull that waits until others' changes
-- are checked (its own are skipped by the index, however many it just pushed).
CREATE INDEX changes_unchecked ON changes(org_id, origin) WHERE state = 0;

-- Why a refused change was refused, and who pushed it (its session), who is told at the next
-- pull. The change itself stays stored (sealed) and is never relayed or exported.
CREATE TABLE refusals (
    doc_id  TEXT NOT NULL,
    hash    BLOB NOT NULL,
    org_id  TEXT NOT NULL,
    origin  TEXT NOT NULL,
    reason  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (doc_id, hash)
) STRICT;

-- Monotonic counters. `relay` starts above every cursor a client may already hold (old
-- cursors are sequence numbers, some of them of changes no longer relayed).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('relay', (SELECT coalesce(max(seq), 0) FROM changes));

CREATE INDEX materialize_queue_org ON materialize_queue(org_id, seq);
