-- tokentally store schema, version 5: top_edited_files from an index alone.
--
-- The edit tools' partial index holds every column the question reads of
-- an edit event (its context for the developer and session, the tool use
-- that ties a decision to its result, the path and the decision), so the
-- question no longer reads the event rows themselves: about 9 bytes per
-- stored event on a team's shape, for a third of the question's time.
-- The list must stay exactly as query::files writes it.
DROP INDEX IF EXISTS events_edit_time;
CREATE INDEX IF NOT EXISTS events_edit_time
    ON events(time_ns, event_name, tool_name, tool_use_id, file_path, decision, context_id)
    WHERE event_name IN ('tool_decision', 'tool_result')
      AND tool_name IN ('Edit', 'MultiEdit', 'Write', 'NotebookEdit', 'apply_patch');
