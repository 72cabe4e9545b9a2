//! `tokentally demo`: a separate store filled with a generated team through
//! the real ingest path, on which every tool gives a non-empty answer whose
//! default reply stays under 20 KB; a second `demo` on the same store is
//! refused and leaves it as it was.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::cli as tokentally;

fn query(data_dir: &Path, tool: &str, args: &str) -> (serde_json::Value, usize) {
    let out = tokentally(data_dir, &["query", tool, args]);
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        out.stdout.len(),
    )
}

#[test]
fn demo_data_answers_every_tool() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = tokentally(&demo, &["demo", "--events", "8000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "stored N events and M metric points of S sessions"
    let stored = stdout
        .lines()
        .find(|l| l.starts_with("stored "))
        .unwrap_or_else(|| panic!("{stdout}"));
    // Exactly what the generator makes for the plan (counts do not depend
    // on the end time), all of it stored.
    let (events, points) = tokentally::demo::Generator::new(tokentally::demo::Plan::team(8000, 0))
        .fold((0u64, 0u64), |(e, p), s| {
            (e + s.events.len() as u64, p + s.points.len() as u64)
        });
    assert!(
        stored.starts_with(&format!(
            "stored {events} events and {points} metric points"
        )),
        "{stored}"
    );
    assert!(stdout.contains("tokentally serve --demo"), "{stdout}");

    // What the store holds equals what was stored.
    let (described, _) = query(&demo, "describe_data", r#"{"since":"60d"}"#);
    assert_eq!(common::described_events(&described), events);

    // Every query tool of the registry (the timeline needs a session, below).
    let ranged = tokentally::mcp::registry::TOOLS
        .iter()
        .filter(|t| t.is_ranged_query())
        .map(|t| t.name);
    for tool in ranged {
        let (reply, bytes) = query(&demo, tool, "{}");
        let rows = reply["rows"].as_array().unwrap();
        assert!(
            !rows.is_empty(),
            "{tool} answered nothing on demo data: {reply}"
        );
        assert!(bytes < 20_000, "{tool}'s default reply is {bytes} bytes");
    }
    let (sessions, _) = query(&demo, "list_sessions", "{}");
    let id = sessions["rows"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (timeline, bytes) = query(
        &demo,
        "session_timeline",
        &format!(r#"{{"session_id":"{id}"}}"#),
    );
    assert!(
        !timeline["rows"].as_array().unwrap().is_empty(),
        "{timeline}"
    );
    assert!(
        bytes < 20_000,
        "session_timeline's default reply is {bytes} bytes"
    );

    // Generating again into the same store is refused, and nothing changes.
    let again = tokentally(&demo, &["demo", "--events", "100"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds a store"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let (after, _) = query(&demo, "describe_data", r#"{"since":"60d"}"#);
    assert_eq!(after["rows"], described["rows"]);
}
