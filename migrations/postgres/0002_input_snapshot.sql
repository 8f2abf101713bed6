-- Schema version 2: the compacted snapshot of current inputs (the latest
-- record of every live document), which a restarting engine loads instead
-- of the whole input log, and the seq / window it reflects.

CREATE TABLE input_snapshot (
    doc_key TEXT COLLATE "C" PRIMARY KEY,
    seq     BIGINT NOT NULL UNIQUE,
    tenant  TEXT COLLATE "C",
    kind    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    body    BYTEA NOT NULL
);

-- One row at most.
CREATE TABLE input_snapshot_head (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq BIGINT NOT NULL,
    win BIGINT NOT NULL
);
