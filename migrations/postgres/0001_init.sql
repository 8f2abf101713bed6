-- Recheck scheduler core, schema version 1. Applied inside the store's own
-- schema (search_path), in one transaction, recorded in schema_migrations.
-- Text columns that are sorted or compared use the "C" collation so the
-- order is byte order, the same as the other backends'.

CREATE TABLE input_log (
    seq     BIGINT PRIMARY KEY,
    tenant  TEXT COLLATE "C",
    kind    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    body    BYTEA NOT NULL
);

CREATE TABLE source_offsets (
    source   TEXT COLLATE "C" PRIMARY KEY,
    position TEXT NOT NULL
);

-- One entry per committed window; payload holds the window's deltas as one batch.
CREATE TABLE ledger (
    idx          BIGINT PRIMARY KEY,
    win          BIGINT NOT NULL UNIQUE,
    seq          BIGINT NOT NULL,
    prev_hash    TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    hash         TEXT NOT NULL,
    payload      BYTEA NOT NULL
);

CREATE TABLE cursors (
    name     TEXT COLLATE "C" PRIMARY KEY,
    position BIGINT NOT NULL
);

-- doc is the job as planned; its state and attempt live in their columns.
CREATE TABLE jobs (
    id       TEXT COLLATE "C" PRIMARY KEY,
    tenant   TEXT COLLATE "C" NOT NULL,
    artifact TEXT COLLATE "C" NOT NULL,
    win      BIGINT NOT NULL,
    state    TEXT NOT NULL,
    attempt  INTEGER NOT NULL,
    doc      BYTEA NOT NULL
);
CREATE INDEX jobs_state ON jobs (state, win, id);
CREATE INDEX jobs_tenant_state ON jobs (tenant, state, win, id);
CREATE INDEX jobs_tenant_artifact ON jobs (tenant, artifact, win, id);

CREATE TABLE job_transitions (
    job_id     TEXT COLLATE "C" NOT NULL REFERENCES jobs (id),
    n          INTEGER NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    at         TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    PRIMARY KEY (job_id, n)
);

-- The current impact snapshot: one row per distinct finding of an artifact.
CREATE TABLE impact (
    tenant        TEXT COLLATE "C" NOT NULL,
    artifact      TEXT COLLATE "C" NOT NULL,
    row_key       TEXT COLLATE "C" NOT NULL,
    advisory      TEXT COLLATE "C" NOT NULL,
    vulnerability TEXT COLLATE "C" NOT NULL,
    purl          TEXT COLLATE "C",
    purl_base     TEXT COLLATE "C",
    count         BIGINT NOT NULL,
    finding       BYTEA NOT NULL,
    PRIMARY KEY (tenant, artifact, row_key)
);
CREATE INDEX impact_advisory ON impact (tenant, advisory);
CREATE INDEX impact_vulnerability ON impact (tenant, vulnerability);
CREATE INDEX impact_purl ON impact (tenant, purl);
CREATE INDEX impact_purl_base ON impact (tenant, purl_base);

CREATE TABLE events (
    id          TEXT COLLATE "C" PRIMARY KEY,
    tenant      TEXT COLLATE "C" NOT NULL,
    job_id      TEXT COLLATE "C" NOT NULL,
    kind        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    body        BYTEA NOT NULL
);
CREATE INDEX events_job ON events (job_id);

CREATE TABLE schedules (
    id     TEXT COLLATE "C" PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    doc    BYTEA NOT NULL
);
CREATE INDEX schedules_tenant ON schedules (tenant, id);

CREATE TABLE runs (
    id     TEXT COLLATE "C" PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    doc    BYTEA NOT NULL
);
CREATE INDEX runs_tenant ON runs (tenant, id);
