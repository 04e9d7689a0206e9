-- Schema 3: failed sign-in attempts per client address (login and enrollment), so that the
-- limit on them is kept by the database, as it is when several instances share PostgreSQL.

CREATE TABLE login_failures (
    client       TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL
) STRICT;
