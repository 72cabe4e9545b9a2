//! The benchmark still works: `examples/bench` generates a small team,
//! ingests it through the real path and asks every tool, each answering
//! without an error. No time is asserted (the benchmark prints figures;
//! `tools/bench` compares them with DuckDB in one run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/clickhouse_server.rs"]
mod clickhouse_server;

use std::path::PathBuf;
use std::process::Command;

/// The example program beside this test's profile directory
/// (`<target>/<profile>/examples`; `tools/test` builds it with `cargo build
/// --examples` before the tests, since `cargo test` builds examples only as
/// test harnesses).
fn bench_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir
        .join("examples")
        .join(format!("bench{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn every_question_of_the_benchmark_answers_on_a_small_team() {
    let bin = bench_binary();
    assert!(
        bin.exists(),
        "{} is missing: run the suite with tools/test (it builds the examples first)",
        bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    // The ClickHouse column too, on a server of this test's own.
    let ch = clickhouse_server::ClickHouseServer::start("");
    let out = Command::new(&bin)
        .args(["--events", "3000", "--csv"])
        .arg(dir.path().join("csv"))
        .arg("--dir")
        .arg(dir.path().join("data"))
        .arg("--clickhouse")
        .arg(ch.fresh_database_url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The generator's own counts (they do not depend on the end time).
    let (events, points) = tokentally::demo::Generator::new(tokentally::demo::Plan::team(3000, 0))
        .fold((0, 0), |(e, p), s| (e + s.events.len(), p + s.points.len()));
    assert!(
        stdout.contains(&format!(
            "generated {events} events and {points} metric points"
        )),
        "{stdout}"
    );
    // Every ranged query tool of the registry is asked for every range.
    let ranged = tokentally::mcp::registry::TOOLS
        .iter()
        .filter(|t| t.is_ranged_query())
        .map(|t| t.name);
    for tool in ranged {
        for label in ["1d", "7d", "30d", "all"] {
            for engine in ["", "clickhouse "] {
                let line = stdout
                    .lines()
                    .find(|l| l.starts_with(&format!("{engine}query {tool} {label}: median")))
                    .unwrap_or_else(|| panic!("no line for {engine}{tool} {label}:\n{stdout}"));
                assert!(!line.contains("ERROR"), "{line}");
            }
        }
    }
    assert!(stdout.contains("\nquery session_timeline session: median"));
    assert!(stdout.contains("clickhouse query session_timeline session: median"));
    assert!(stdout.contains("clickhouse ingest"), "{stdout}");
    // The timeline names the probe session, which the CSV records.
    let probe = std::fs::read_to_string(dir.path().join("csv/probe_session")).unwrap();
    assert!(!probe.is_empty());
    assert!(stdout.contains(&format!("Session {probe}")), "{stdout}");
    // Every generated event and point is in the CSVs DuckDB reads (header + rows).
    let lines = |f: &str| {
        std::fs::read_to_string(dir.path().join("csv").join(f))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(lines("events.csv"), events + 1);
    assert_eq!(lines("points.csv"), points + 1);
}
