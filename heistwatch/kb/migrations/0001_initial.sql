-- Sources, per-source objects and their names, alias claims, relationships and indicators.
CREATE TABLE sources (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT,
    date TEXT,
    url TEXT,
    package TEXT
);

CREATE TABLE objects (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL REFERENCES sources(key),
    aliases TEXT NOT NULL DEFAULT '[]',
    description TEXT NOT NULL DEFAULT '',
    external_id TEXT,
    reference TEXT,
    confidence INTEGER CHECK (confidence BETWEEN 0 AND 100),
    tlp TEXT NOT NULL DEFAULT 'clear',
    attrs TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX objects_type ON objects(type);
CREATE INDEX objects_source ON objects(source);
CREATE INDEX objects_external_id ON objects(external_id);

CREATE TABLE names (
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    object_id TEXT NOT NULL,
    is_primary INTEGER NOT NULL,
    PRIMARY KEY (key, object_id, name)
) WITHOUT ROWID;
CREATE INDEX names_object ON names(object_id);

CREATE TABLE claims (
    id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    relation TEXT NOT NULL,
    object_id TEXT NOT NULL,
    source TEXT NOT NULL REFERENCES sources(key),
    likelihood TEXT,
    said TEXT,
    date TEXT,
    reference TEXT,
    title TEXT,
    note TEXT,
    tlp TEXT NOT NULL DEFAULT 'clear'
);
CREATE INDEX claims_subject ON claims(subject_id);
CREATE INDEX claims_object ON claims(object_id);

CREATE TABLE relationships (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    target_ref TEXT NOT NULL,
    source TEXT NOT NULL REFERENCES sources(key),
    reference TEXT,
    confidence INTEGER CHECK (confidence BETWEEN 0 AND 100),
    description TEXT NOT NULL DEFAULT '',
    tlp TEXT NOT NULL DEFAULT 'clear'
);
CREATE INDEX relationships_from ON relationships(source_ref, type);
CREATE INDEX relationships_to ON relationships(target_ref, type);

CREATE TABLE indicators (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    pattern TEXT NOT NULL,
    source TEXT NOT NULL REFERENCES sources(key),
    first_seen TEXT,
    last_seen TEXT,
    confidence INTEGER CHECK (confidence BETWEEN 0 AND 100),
    reference TEXT,
    description TEXT NOT NULL DEFAULT '',
    tlp TEXT NOT NULL DEFAULT 'clear'
);
CREATE INDEX indicators_value ON indicators(kind, value);
