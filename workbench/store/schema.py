"""The schema, as numbered steps. Kept free of heavy imports so that every
process can check the store's version cheaply; `migrations.py` applies them.

Tables still to come attach to these without changing them: datasets and
dataset versions (linked to runs through a `run_datasets` table), models,
model versions and aliases (a version points at the run that produced it and
at its artifact), validation/drift reports (per dataset version). The events
table doubles as the watcher's durable queue by adding a state column.
"""

from __future__ import annotations

from workbench.store.metric_chunks import METRIC_POINTS_VIEW, METRICS_VIEW

SCHEMA_V1 = """
CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    path        TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL
);

CREATE TABLE runs (
    id                     INTEGER PRIMARY KEY,
    project_id             INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    parent_id              INTEGER REFERENCES runs(id),
    status                 TEXT NOT NULL CHECK (status IN
                               ('queued','running','succeeded','failed','stopped','lost')),
    trainer                TEXT NOT NULL,
    priority               INTEGER NOT NULL DEFAULT 0,
    created_at             REAL NOT NULL,
    started_at             REAL,
    ended_at               REAL,
    exit_code              INTEGER,
    supervisor_pid         INTEGER,
    supervisor_started_at  REAL,
    pid                    INTEGER,
    pid_started_at         REAL,
    heartbeat_at           REAL,
    stop_requested_at      REAL,
    dispatched_at          REAL,     -- when a supervisor was spawned for a queued run
    hostname               TEXT,     -- where the supervisor runs
    cpu_time_s             REAL,     -- user+system CPU of the whole tree, from rusage
    max_rss_bytes          INTEGER,  -- peak RSS of the largest process, from rusage
    message                TEXT,
    environment            TEXT
);
CREATE INDEX runs_project ON runs(project_id, id);
CREATE INDEX runs_status ON runs(status, priority DESC, id);

CREATE TABLE params (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,            -- JSON
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- One row per metric series (run, key): how many points, the latest one and
-- the range, kept current by every flush, so "latest value per key" never
-- scans the points.
CREATE TABLE metric_series (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    count   INTEGER NOT NULL,
    step    INTEGER,
    ts      REAL NOT NULL,
    value   REAL,
    min     REAL,
    max     REAL,
    UNIQUE (run_id, key)
);

-- The points, clustered by series so that appending and reading a series are
-- both sequential; idx numbers the points of a series from 0. (No foreign key:
-- a check per inserted point costs more than the trigger below.)
CREATE TABLE metrics (
    series_id  INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    step       INTEGER,
    ts         REAL NOT NULL,
    value      REAL,
    PRIMARY KEY (series_id, idx)
) WITHOUT ROWID;

-- Min/max/mean buckets of `size` points of each series, also kept by every
-- flush: a 1M-point series is plotted from thousands of rows, not a million.
CREATE TABLE metric_buckets (
    series_id   INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    first_step  INTEGER,
    last_step   INTEGER,
    last_ts     REAL NOT NULL,
    min         REAL,
    max         REAL,
    sum         REAL NOT NULL,
    valued      INTEGER NOT NULL,   -- points with a value (not NaN), for the mean
    last        REAL,
    PRIMARY KEY (series_id, size, bucket)
) WITHOUT ROWID;

CREATE TRIGGER metric_series_deleted AFTER DELETE ON metric_series BEGIN
    DELETE FROM metrics WHERE series_id = old.id;
    DELETE FROM metric_buckets WHERE series_id = old.id;
END;

-- Points with their run and key, for reading the store by hand.
CREATE VIEW metric_points AS
    SELECT s.run_id, s.key, m.idx, m.step, m.ts, m.value
    FROM metrics m JOIN metric_series s ON s.id = m.series_id;

CREATE TABLE resource_samples (
    run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    ts               REAL NOT NULL,
    cpu_percent      REAL,
    rss_bytes        INTEGER,
    num_threads      INTEGER,
    num_procs        INTEGER,
    read_bytes       INTEGER,
    write_bytes      INTEGER,
    sys_cpu_percent  REAL,
    sys_mem_percent  REAL,
    sys_mem_used     INTEGER,
    gpu              TEXT              -- JSON list, one object per device; NULL without NVML
);
CREATE INDEX resource_samples_run ON resource_samples(run_id, ts);

CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    kind        TEXT,
    created_at  REAL NOT NULL,
    UNIQUE (run_id, name)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    ts          REAL NOT NULL,
    kind        TEXT NOT NULL,
    project_id  INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    run_id      INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    message     TEXT NOT NULL,
    data        TEXT                 -- JSON
);
CREATE INDEX events_ts ON events(ts);
"""


# Dataset versions, identified by the SHA-256 of their content, and which
# versions each run used (lineage: data version -> run -> model).
DATASETS = """
CREATE TABLE dataset_versions (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    sha256      TEXT NOT NULL,
    path        TEXT NOT NULL,        -- where it was registered from
    format      TEXT NOT NULL,        -- csv, csv.gz or parquet
    rows        INTEGER NOT NULL,
    columns     TEXT NOT NULL,        -- JSON list of column names
    size_bytes  INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,     -- when hashed: an unchanged file is not hashed again
    created_at  REAL NOT NULL,
    UNIQUE (project_id, sha256)
);

CREATE TABLE run_datasets (
    run_id              INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    dataset_version_id  INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,
    role                TEXT NOT NULL,   -- "train"
    PRIMARY KEY (run_id, dataset_version_id)
) WITHOUT ROWID;
CREATE INDEX run_datasets_version ON run_datasets(dataset_version_id);
"""

# Validation and drift reports, kept with the dataset version they judged
# (no version when the file could not even be read), and reference profiles
# computed once per reference version for drift.
DATA_REPORTS = """
CREATE TABLE data_reports (
    id                  INTEGER PRIMARY KEY,
    project_id          INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    dataset_version_id  INTEGER REFERENCES dataset_versions(id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('validation', 'drift')),
    file                TEXT NOT NULL,
    passed              INTEGER NOT NULL,
    report              TEXT NOT NULL,   -- JSON
    created_at          REAL NOT NULL
);
CREATE INDEX data_reports_project ON data_reports(project_id, id);

CREATE TABLE reference_profiles (
    dataset_version_id  INTEGER PRIMARY KEY REFERENCES dataset_versions(id) ON DELETE CASCADE,
    profile             TEXT NOT NULL,   -- JSON
    created_at          REAL NOT NULL
);
"""

# Model versions: one per succeeded run that saved a model, numbered per
# project; aliases (champion, challenger, user-defined) point at versions; every
# promotion decision is kept with both scores.
MODELS = """
CREATE TABLE model_versions (
    id                 INTEGER PRIMARY KEY,
    project_id         INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version            INTEGER NOT NULL,
    run_id             INTEGER NOT NULL UNIQUE REFERENCES runs(id) ON DELETE CASCADE,
    framework          TEXT NOT NULL,     -- lightgbm, sklearn, ...
    framework_version  TEXT,
    model_name         TEXT NOT NULL,     -- artifact name, e.g. model.txt
    model_sha256       TEXT NOT NULL,
    schema_sha256      TEXT,              -- feature_schema.json
    holdout_sha256     TEXT,              -- holdout.parquet: the evaluation data
    task               TEXT,
    metric             TEXT,              -- the primary metric when registered
    metrics            TEXT NOT NULL,     -- JSON: final value per key
    created_at         REAL NOT NULL,
    UNIQUE (project_id, version)
);

CREATE TABLE model_aliases (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    alias       TEXT NOT NULL,
    version_id  INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (project_id, alias)
) WITHOUT ROWID;

CREATE TABLE promotions (
    id                INTEGER PRIMARY KEY,
    project_id        INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    alias             TEXT NOT NULL,
    challenger_id     INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    champion_id       INTEGER REFERENCES model_versions(id) ON DELETE SET NULL,
    metric            TEXT,
    challenger_score  REAL,
    champion_score    REAL,
    margin            REAL,
    rescored          INTEGER NOT NULL DEFAULT 0,  -- champion scored on the challenger's hold-out
    promoted          INTEGER NOT NULL,
    reason            TEXT NOT NULL,
    created_at        REAL NOT NULL
);
CREATE INDEX promotions_project ON promotions(project_id, id);
"""

# Automation: each pipeline over a set of new files is a durable row with its
# steps, so a watcher killed at any step resumes where it stopped; the files
# handed to pipelines (by path, size and mtime) so none is handed twice; and
# the batches accepted for training, kept in the store as Parquet.
AUTOMATION = """
CREATE TABLE pipelines (
    id                  INTEGER PRIMARY KEY,
    project_id          INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    trigger             TEXT NOT NULL,     -- watch, rescan, cli
    files               TEXT NOT NULL,     -- JSON list of paths
    state               TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    outcome             TEXT,              -- promoted, kept, rejected, validated, ...
    exit_code           INTEGER,
    owner_pid           INTEGER,
    owner_started_at    REAL,
    created_at          REAL NOT NULL,
    started_at          REAL,
    ended_at            REAL,
    error               TEXT
);
CREATE INDEX pipelines_state ON pipelines(state, id);
CREATE INDEX pipelines_project ON pipelines(project_id, id);

CREATE TABLE pipeline_steps (
    id           INTEGER PRIMARY KEY,
    pipeline_id  INTEGER NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    step         TEXT NOT NULL,
    file         TEXT NOT NULL DEFAULT '',  -- for the per-file steps
    status       TEXT NOT NULL,             -- running, ok, alert, rejected, skipped, failed
    summary      TEXT,
    detail       TEXT,                      -- JSON
    started_at   REAL NOT NULL,
    ended_at     REAL,
    UNIQUE (pipeline_id, step, file)
);

CREATE TABLE watched_files (
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    pipeline_id  INTEGER REFERENCES pipelines(id) ON DELETE SET NULL,
    PRIMARY KEY (project_id, path)
) WITHOUT ROWID;

CREATE TABLE data_verdicts (
    project_id          INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    dataset_version_id  INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,
    verdict             TEXT NOT NULL CHECK (verdict IN ('accepted', 'rejected')),
    labelled            INTEGER NOT NULL,
    stored              TEXT,            -- the accepted rows, as Parquet in the store
    pipeline_id         INTEGER REFERENCES pipelines(id) ON DELETE SET NULL,
    created_at          REAL NOT NULL,
    PRIMARY KEY (project_id, dataset_version_id)
) WITHOUT ROWID;
"""

# The promotion gate's statistics: how it decided (paired bootstrap or point
# comparison), the interval of challenger minus champion, and on how many rows.
GATE_STATISTICS = """
ALTER TABLE promotions ADD COLUMN method TEXT;
ALTER TABLE promotions ADD COLUMN interval_low REAL;
ALTER TABLE promotions ADD COLUMN interval_high REAL;
ALTER TABLE promotions ADD COLUMN evaluation_rows INTEGER;
"""

# The store's identity (see `workbench.store.identity`): a random id made once,
# when this step runs, and also written to the identity file beside the database.
STORE_META = """
CREATE TABLE store_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO store_meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));
"""

# Global identities: a random id for each run, dataset version and model
# version, the same in every store an archive carries it to (existing rows get
# one now; a trigger gives one to a row inserted without). Aliases that arrive
# in an archive wait as proposals; each archive destination keeps the watermark
# of its last export, for `archive export --since last --to NAME`.
GLOBAL_IDS = """
ALTER TABLE runs ADD COLUMN uuid TEXT;
ALTER TABLE dataset_versions ADD COLUMN uuid TEXT;
ALTER TABLE model_versions ADD COLUMN uuid TEXT;
UPDATE runs SET uuid = lower(hex(randomblob(16))) WHERE uuid IS NULL;
UPDATE dataset_versions SET uuid = lower(hex(randomblob(16))) WHERE uuid IS NULL;
UPDATE model_versions SET uuid = lower(hex(randomblob(16))) WHERE uuid IS NULL;
CREATE UNIQUE INDEX runs_uuid ON runs(uuid);
CREATE UNIQUE INDEX dataset_versions_uuid ON dataset_versions(uuid);
CREATE UNIQUE INDEX model_versions_uuid ON model_versions(uuid);
CREATE TRIGGER runs_uuid_default AFTER INSERT ON runs WHEN new.uuid IS NULL BEGIN
    UPDATE runs SET uuid = lower(hex(randomblob(16))) WHERE id = new.id;
END;
CREATE TRIGGER dataset_versions_uuid_default AFTER INSERT ON dataset_versions
WHEN new.uuid IS NULL BEGIN
    UPDATE dataset_versions SET uuid = lower(hex(randomblob(16))) WHERE id = new.id;
END;
CREATE TRIGGER model_versions_uuid_default AFTER INSERT ON model_versions
WHEN new.uuid IS NULL BEGIN
    UPDATE model_versions SET uuid = lower(hex(randomblob(16))) WHERE id = new.id;
END;

CREATE TABLE model_alias_proposals (
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    alias         TEXT NOT NULL,
    version_id    INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    source_store  TEXT,
    proposed_at   REAL NOT NULL,
    PRIMARY KEY (project_id, alias, version_id)
) WITHOUT ROWID;

CREATE TABLE archive_exports (
    destination  TEXT PRIMARY KEY,
    watermark    REAL NOT NULL,
    exported_at  REAL NOT NULL
) WITHOUT ROWID;
"""

# What users add to runs: tags (many per run), a note, and when a run was
# archived (hidden from listings until unarchived).
RUN_NOTES = """
CREATE TABLE run_tags (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (run_id, tag)
) WITHOUT ROWID;
CREATE INDEX run_tags_tag ON run_tags(tag, run_id);
ALTER TABLE runs ADD COLUMN note TEXT;
ALTER TABLE runs ADD COLUMN archived_at REAL;
CREATE INDEX runs_archived ON runs(archived_at) WHERE archived_at IS NOT NULL;
"""

# When a run's note or archive time last changed, so `archive export --since`
# carries a run whose note changed and nothing else (tags have their own time).
ARCHIVE_EXTRAS = """
ALTER TABLE runs ADD COLUMN notes_changed_at REAL;
CREATE TRIGGER runs_notes_changed AFTER UPDATE OF note, archived_at ON runs
WHEN old.note IS NOT new.note OR old.archived_at IS NOT new.archived_at BEGIN
    UPDATE runs SET notes_changed_at = (julianday('now') - 2440587.5) * 86400.0
    WHERE id = new.id;
END;
"""

# Runs handed to an executor other than the local supervisor (a Slurm job):
# where the job is, what Slurm last said of it, and how far its journal (the
# append-only file the job writes instead of opening this store) has been read.
EXECUTOR = """
ALTER TABLE runs ADD COLUMN executor TEXT NOT NULL DEFAULT 'local';
ALTER TABLE runs ADD COLUMN job_id TEXT;
ALTER TABLE runs ADD COLUMN job_host TEXT;
ALTER TABLE runs ADD COLUMN node TEXT;
ALTER TABLE runs ADD COLUMN slurm_state TEXT;
ALTER TABLE runs ADD COLUMN slurm_reason TEXT;
ALTER TABLE runs ADD COLUMN journal_path TEXT;
ALTER TABLE runs ADD COLUMN journal_offset INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_jobs ON runs(status, id) WHERE executor != 'local';
"""

# Metric points in chunks (`workbench.store.metric_chunks`): each 1,024 points
# of a series are one row, with their summary, instead of a row per point (the
# last chunk may be partial). The old rows are renamed `metric_rows`, and the
# migration then packs them and drops that table (`metrics.pack_rows`). Chunk
# summaries replace the buckets table. `metrics` and `metric_points` become
# views that decode the chunks in plain SQL: the store still reads by hand
# with any SQLite client, as before.
METRIC_CHUNKS = f"""
DROP VIEW metric_points;
DROP TRIGGER metric_series_deleted;
DROP TABLE metric_buckets;
ALTER TABLE metrics RENAME TO metric_rows;

-- Points chunk * 1024 .. chunk * 1024 + count - 1 of a series; the summary
-- columns come before the BLOBs, so reading them skips the BLOBs' pages.
CREATE TABLE metric_chunks (
    series_id   INTEGER NOT NULL,
    chunk       INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    first_step  INTEGER,
    last_step   INTEGER,
    last_ts     REAL NOT NULL,
    min         REAL,
    max         REAL,
    sum         REAL NOT NULL,
    valued      INTEGER NOT NULL,   -- points with a value (not NaN), for the mean
    last        REAL,
    steps       BLOB NOT NULL,
    ts          BLOB NOT NULL,
    vals        BLOB NOT NULL,
    PRIMARY KEY (series_id, chunk)
);

CREATE TRIGGER metric_series_deleted AFTER DELETE ON metric_series BEGIN
    DELETE FROM metric_chunks WHERE series_id = old.id;
END;

-- Every point (series_id, idx, step, ts, value), as the old table held them.
{METRICS_VIEW};

-- Points with their run and key, for reading the store by hand.
{METRIC_POINTS_VIEW};
"""

# name -> SQL script; applied in this order, each once, each in a transaction.
STEPS: dict[str, str] = {
    "m001_initial": SCHEMA_V1,
    "m002_datasets": DATASETS,
    "m003_data_reports": DATA_REPORTS,
    "m004_models": MODELS,
    "m005_automation": AUTOMATION,
    "m006_gate_statistics": GATE_STATISTICS,
    "m007_store_meta": STORE_META,
    "m008_global_ids": GLOBAL_IDS,
    "m009_run_notes": RUN_NOTES,
    "m010_metric_chunks": METRIC_CHUNKS,
    "m011_executor": EXECUTOR,
    "m012_archive_extras": ARCHIVE_EXTRAS,
}
