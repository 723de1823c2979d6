-- Ingested reports and their findings (indicators, mentions, entities, techniques), each with its span.
CREATE TABLE reports (
    id TEXT COLLATE "C" PRIMARY KEY,
    sha256 TEXT COLLATE "C" NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    title TEXT COLLATE "C" NOT NULL,
    format TEXT COLLATE "C" NOT NULL,
    chars BIGINT NOT NULL,
    ingested TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL REFERENCES sources(key)
);

CREATE TABLE findings (
    id TEXT COLLATE "C" PRIMARY KEY,
    report_id TEXT COLLATE "C" NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    kind TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C" NOT NULL,
    reason TEXT COLLATE "C" NOT NULL,
    start BIGINT NOT NULL,
    "end" BIGINT NOT NULL,
    sentence_start BIGINT NOT NULL,
    sentence_end BIGINT NOT NULL,
    object_ids TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    score DOUBLE PRECISION
);
CREATE INDEX findings_report ON findings(report_id, start);
CREATE INDEX findings_value ON findings(kind, value);
