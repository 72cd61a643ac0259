-- The feature registry's history: features.feature_catalog (a view) shows each feature's
-- current version, and its post-hook adds a row here whenever a feature's definition (its
-- model's code, the macros and vars that compile into it, or its YAML entry) changes.
create table ops.feature_versions (
    name text not null,
    version text not null,
    model text not null,
    family text not null,
    definition text,
    unit text,
    "window" text,
    model_version text not null,
    first_seen timestamptz not null default now(),
    primary key (name, version)
);
comment on table ops.feature_versions is
    'Every version of every feature the catalog has shown: the md5 of its model''s compiled inputs '
    '(model_version) and of its YAML entry; first_seen is when a build first had it.';
