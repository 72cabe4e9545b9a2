-- tokentally store schema, version 9: edited files by number.
--
-- * edit_files: each edited path once, numbered in the order it was first
--   seen. An `edits` row names its file by that number (`file`), so
--   top_edited_files counts a month of edits per file by an integer and
--   reads each path once, for the answer, instead of hashing and comparing
--   the path text of every edit. Paths no edit names any more go with
--   retention (store::edits::prune).
CREATE TABLE IF NOT EXISTS edit_files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE
);
INSERT OR IGNORE INTO edit_files (path)
    SELECT file_path FROM edits WHERE file_path IS NOT NULL ORDER BY first_ns;
ALTER TABLE edits ADD COLUMN file INTEGER REFERENCES edit_files(id);
UPDATE edits SET file = (SELECT f.id FROM edit_files f WHERE f.path = edits.file_path)
    WHERE file_path IS NOT NULL;
ALTER TABLE edits DROP COLUMN file_path;
