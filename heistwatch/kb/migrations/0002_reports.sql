-- Ingested reports and their findings (indicators, mentions, entities, techniques), each with its span.
CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    format TEXT NOT NULL,
    chars INTEGER NOT NULL,
    ingested TEXT NOT NULL,
    source TEXT NOT NULL REFERENCES sources(key)
);

CREATE TABLE findings (
    id TEXT PRIMARY KEY,
    report_id TEXT NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    role TEXT NOT NULL,
    reason TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    sentence_start INTEGER NOT NULL,
    sentence_end INTEGER NOT NULL,
    object_ids TEXT NOT NULL DEFAULT '[]',
    score REAL
);
CREATE INDEX findings_report ON findings(report_id, start);
CREATE INDEX findings_value ON findings(kind, value);
