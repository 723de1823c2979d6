-- Sightings recorded by hunts: where an indicator was seen in the exchange's own data, and by which hunt.
CREATE TABLE sightings (
    id TEXT COLLATE "C" PRIMARY KEY,
    indicator_id TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    observed TEXT COLLATE "C" NOT NULL,
    file TEXT COLLATE "C" NOT NULL,
    line BIGINT NOT NULL,
    field TEXT COLLATE "C" NOT NULL,
    raw TEXT COLLATE "C" NOT NULL,
    first_seen TEXT COLLATE "C",
    last_seen TEXT COLLATE "C",
    count BIGINT NOT NULL,
    hunt TEXT COLLATE "C" NOT NULL,
    recorded TEXT COLLATE "C" NOT NULL
);
CREATE INDEX sightings_indicator ON sightings(indicator_id);
CREATE INDEX sightings_value ON sightings(kind, value);
