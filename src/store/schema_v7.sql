-- tokentally store schema, version 7: one row per edit for top_edited_files.
--
-- * edits: per edit (a tool use of an edit tool, or an edit event without a
--   tool use id), its first and last record's time, developer, session,
--   context, tool, path (of its tool_result), decision (of its
--   tool_decision), how many decision and result events it has, and
--   whether its records disagree (`mixed`: then the question folds them
--   from the events). Kept in the same transaction as the events by one
--   upsert (store::edits); stored in time order of the first record, so a
--   range is one contiguous read. Filled from the events when the migration
--   runs.
CREATE TABLE IF NOT EXISTS edits (
    first_ns INTEGER NOT NULL,
    key TEXT NOT NULL,
    last_ns INTEGER NOT NULL,
    developer TEXT,
    session INTEGER,
    context_id INTEGER NOT NULL,
    tool TEXT NOT NULL,
    file_path TEXT,
    decision TEXT,
    decisions INTEGER NOT NULL,
    results INTEGER NOT NULL,
    repository TEXT,
    branch TEXT,
    mixed INTEGER NOT NULL,
    PRIMARY KEY (first_ns, key)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS edits_key ON edits(key);
-- Edits longer than an hour (store::edits::LONG_NS), found when they began
-- before a range and end inside it.
CREATE INDEX IF NOT EXISTS edits_long ON edits(first_ns, last_ns)
    WHERE last_ns - first_ns >= 3600000000000;
