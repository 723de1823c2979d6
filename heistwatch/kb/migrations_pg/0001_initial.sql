-- Sources, per-source objects and their names, alias claims, relationships and indicators.
-- Text is compared and ordered bytewise (COLLATE "C"), as SQLite does, whatever the database's locale.
CREATE TABLE sources (
    key TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    version TEXT COLLATE "C",
    date TEXT COLLATE "C",
    url TEXT COLLATE "C",
    package TEXT COLLATE "C"
);

CREATE TABLE objects (
    id TEXT COLLATE "C" PRIMARY KEY,
    type TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL REFERENCES sources(key),
    aliases TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    external_id TEXT COLLATE "C",
    reference TEXT COLLATE "C",
    confidence INTEGER CHECK (confidence BETWEEN 0 AND 100),
    tlp TEXT COLLATE "C" NOT NULL DEFAULT 'clear',
    attrs TEXT COLLATE "C" NOT NULL DEFAULT '{}'
);
CREATE INDEX objects_type ON objects(type);
CREATE INDEX objects_source ON objects(source);
CREATE INDEX objects_external_id ON objects(external_id);

CREATE TABLE names (
    key TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    is_primary INTEGER NOT NULL,
    PRIMARY KEY (key, object_id, name)
);
CREATE INDEX names_object ON names(object_id);

CREATE TABLE claims (
    id TEXT COLLATE "C" PRIMARY KEY,
    subject_id TEXT COLLATE "C" NOT NULL,
    relation TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL REFERENCES sources(key),
    likelihood TEXT COLLATE "C",
    said TEXT COLLATE "C",
    date TEXT COLLATE "C",
    reference TEXT COLLATE "C",
    title TEXT COLLATE "C",
    note TEXT COLLATE "C",
    tlp TEXT COLLATE "C" NOT NULL DEFAULT 'clear'
);
CREATE INDEX claims_subject ON claims(subject_id);
CREATE INDEX claims_object ON claims(object_id);

CREATE TABLE relationships (
    id TEXT COLLATE "C" PRIMARY KEY,
    type TEXT COLLATE "C" NOT NULL,
    source_ref TEXT COLLATE "C" NOT NULL,
    target_ref TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL REFERENCES sources(key),
    reference TEXT COLLATE "C",
    confidence INTEGER CHECK (confidence BETWEEN 0 AND 100),
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    tlp TEXT COLLATE "C" NOT NULL DEFAULT 'clear'
);
CREATE INDEX relationships_from ON relationships(source_ref, type);
CREATE INDEX relationships_to ON relationships(target_ref, type);

CREATE TABLE indicators (
    id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    pattern TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL REFERENCES sources(key),
    first_seen TEXT COLLATE "C",
    last_seen TEXT COLLATE "C",
    confidence INTEGER CHECK (confidence BETWEEN 0 AND 100),
    reference TEXT COLLATE "C",
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    tlp TEXT COLLATE "C" NOT NULL DEFAULT 'clear'
);
CREATE INDEX indicators_value ON indicators(kind, value);
