-- Sightings recorded by hunts: where an indicator was seen in the exchange's own data, and by which hunt.
CREATE TABLE sightings (
    id TEXT PRIMARY KEY,
    indicator_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    observed TEXT NOT NULL,
    file TEXT NOT NULL,
    line INTEGER NOT NULL,
    field TEXT NOT NULL,
    raw TEXT NOT NULL,
    first_seen TEXT,
    last_seen TEXT,
    count INTEGER NOT NULL,
    hunt TEXT NOT NULL,
    recorded TEXT NOT NULL
);
CREATE INDEX sightings_indicator ON sightings(indicator_id);
CREATE INDEX sightings_value ON sightings(kind, value);
