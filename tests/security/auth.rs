//! Authentication and scopes: bad tokens (401), tokens outside their
//! scope (403), and the token CLI.

use super::*;

// (1) No, garbled, expired, revoked token, or a token in the URL: 401 with
// `WWW-Authenticate: Bearer`, no data, each audited with its reason and never
// with the secret.
#[tokio::test]
async fn bad_tokens_get_401_with_a_bearer_challenge_and_are_audited() {
    let t = start().await;
    let url = t.mcp_url();
    let read = t.bootstrap_token("read");
    let expiring = {
        let store = TokenStore::open(t.dir.path()).unwrap();
        store
            .create(
                "short-lived",
                Scope::Read,
                &[],
                Some(Duration::from_secs(1)),
            )
            .unwrap()
            .1
    };
    let revoked = create_token(&t, "revoked-before-use", Scope::Read, &[]);
    TokenStore::open(t.dir.path())
        .unwrap()
        .revoke("revoked-before-use")
        .unwrap();
    let garbled = format!("{}zz", &read[..read.len() - 2]);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let init = rpc_body(
        1,
        "initialize",
        json!({
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "attacker", "version": "0"}}),
    );
    let http = reqwest::Client::new();
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "no bearer token"),
        (Some("not-a-token".into()), "malformed bearer token"),
        (Some(garbled.clone()), "unknown token"),
        (Some(expiring.clone()), "token expired"),
        (Some(revoked.clone()), "token revoked"),
    ];
    for (token, detail) in &cases {
        let r = post(&http, &url, token.as_deref(), None, &[], init.clone(), None).await;
        assert_eq!(r.status, 401, "{detail}: {}", r.text);
        let challenge = r.header("www-authenticate").unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_eq!(r.text, "unauthorized: a valid bearer token is required\n");
    }
    // Other schemes and a broken header.
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b"] {
        let r = post(
            &http,
            &url,
            None,
            None,
            &[("authorization", header)],
            init.clone(),
            None,
        )
        .await;
        assert_eq!(r.status, 401, "{header}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    // A valid token in the query string is refused, with or without a header.
    for q in ["access_token", "token"] {
        let r = post(
            &http,
            &format!("{url}?{q}={read}"),
            None,
            None,
            &[],
            init.clone(),
            None,
        )
        .await;
        assert_eq!(r.status, 401, "{q}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
        let r = post(
            &http,
            &format!("{url}?{q}={read}"),
            Some(&read),
            None,
            &[],
            init.clone(),
            None,
        )
        .await;
        assert_eq!(r.status, 401, "{q} + header");
    }
    // A token revoked while in use stops working within the 5 s cache time.
    let victim = create_token(&t, "revoked-in-use", Scope::Read, &[]);
    let mut s = Session::open(&url, &victim).await;
    s.call_ok("describe_data", json!({})).await;
    TokenStore::open(t.dir.path())
        .unwrap()
        .revoke("revoked-in-use")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let r = s.call_raw("describe_data", json!({})).await;
    assert_eq!(r.status, 401, "{}", r.text);
    // The valid token still works.
    Session::open(&url, &read)
        .await
        .call_ok("describe_data", json!({}))
        .await;

    let entries = audit_entries(t.dir.path());
    let denials: Vec<(Option<String>, String)> = entries
        .iter()
        .filter(|e| e.record.outcome == "unauthenticated")
        .map(|e| {
            (
                e.record.token_name.clone(),
                e.record.detail.clone().unwrap_or_default(),
            )
        })
        .collect();
    let details: Vec<&str> = denials.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(
        details,
        vec![
            "no bearer token",
            "malformed bearer token",
            "unknown token",
            "token expired",
            "token revoked",
            "malformed bearer token",
            "malformed bearer token",
            "malformed bearer token",
            "token in URL query string refused",
            "token in URL query string refused",
            "token in URL query string refused",
            "token in URL query string refused",
            "token revoked",
        ]
    );
    assert!(denials.iter().all(|(name, _)| name.is_none()));
    for e in entries
        .iter()
        .filter(|e| e.record.outcome == "unauthenticated")
    {
        assert_eq!(e.record.method.as_deref(), Some("POST /mcp"));
        assert_eq!(e.record.peer.as_deref(), Some("127.0.0.1"));
    }
    let mut t = t;
    stop_keeping_files(&mut t).await;
    let audit_bytes = audit_file_bytes(t.dir.path());
    for secret in [&read, &expiring, &revoked, &victim, &garbled] {
        assert!(
            !contains(&audit_bytes, secret.as_bytes()),
            "a secret is in audit.db"
        );
        assert!(
            !contains(&audit_bytes, &secret.as_bytes()[3..]),
            "a secret's hex is in audit.db"
        );
    }
}

// (2) An ingest token is useless on /mcp; a read token cannot ingest when
// ingest requires tokens. Both refusals are 403, and the /mcp one is audited
// with the token's name.
#[tokio::test]
async fn tokens_are_refused_outside_their_scope() {
    let t = TestServer::start_with(|c| {
        generous_limits(c);
        c.ingest_auth = IngestAuth::Required;
    })
    .await;
    assert!(t.running().ingest_requires_token);
    let ingest = create_token(&t, "collector", Scope::Ingest, &[]);
    let read = t.bootstrap_token("read");

    let http = reqwest::Client::new();
    let init = rpc_body(
        1,
        "initialize",
        json!({
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "x", "version": "0"}}),
    );
    let r = post(&http, &t.mcp_url(), Some(&ingest), None, &[], init, None).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.text,
        "forbidden: this token's scope does not allow this\n"
    );
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );

    let body = || logs_body(vec![api_request(DEV_A, "s-1", now_ns(), 1, 1, 1, 0.5)]);
    let resp = post_logs(&t, body(), Some(&read)).await;
    assert_eq!(resp.status(), 403);
    let resp = post_logs(&t, body(), Some(&t.bootstrap_token("audit"))).await;
    assert_eq!(resp.status(), 403);
    let resp = post_logs(&t, body(), None).await;
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 0);
    let resp = post_logs(&t, body(), Some(&ingest)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 1);

    // The read and audit tokens cannot see the audit tools' data through
    // anything but the audit tools; read does not even see them listed.
    let mut reader = Session::open(&t.mcp_url(), &read).await;
    let names = reader.tool_names().await;
    assert_eq!(names.len(), 9);
    assert!(!names.iter().any(|n| n.starts_with("audit")));
    let r = reader.call("audit_log", json!({})).await;
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("scope audit"), "{r}");
    let mut auditor = Session::open(&t.mcp_url(), &t.bootstrap_token("audit")).await;
    let names = auditor.tool_names().await;
    assert_eq!(names.len(), 11);
    assert_eq!(&names[9..], ["audit_log", "audit_summary"]);

    let entries = audit_entries(t.dir.path());
    let forbidden: Vec<_> = entries
        .iter()
        .filter(|e| e.record.outcome == "forbidden")
        .collect();
    assert_eq!(forbidden.len(), 2, "{forbidden:?}");
    assert_eq!(forbidden[0].record.token_name.as_deref(), Some("collector"));
    assert_eq!(forbidden[0].record.scope.as_deref(), Some("ingest"));
    assert_eq!(
        forbidden[0].record.detail.as_deref(),
        Some("scope ingest cannot use /mcp")
    );
    assert_eq!(forbidden[1].record.token_name.as_deref(), Some("read"));
    assert_eq!(forbidden[1].record.tool.as_deref(), Some("audit_log"));
    t.stop().await;
}

// The token CLI: the secret is printed once and works; `list` never shows
// it; `revoke` stops it.
#[tokio::test]
async fn token_cli_creates_lists_and_revokes() {
    let t = start().await;
    let dir = t.dir.path();
    let out = cli(
        dir,
        &[
            "token",
            "create",
            "--name",
            "ci-bot",
            "--scope",
            "read",
            "--developer",
            DEV_A,
            "--expires",
            "30d",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.trim().to_string();
    assert_eq!(stdout.lines().count(), 1);
    assert!(secret.starts_with("tt_") && secret.len() == 67, "{secret}");
    assert!(secret[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("created token \"ci-bot\" (scope read)"),
        "{stderr}"
    );
    assert!(!stderr.contains(&secret));
    // Names are unique.
    let dup = cli(
        dir,
        &["token", "create", "--name", "ci-bot", "--scope", "read"],
    );
    assert!(!dup.status.success());
    let bad = cli(dir, &["token", "create", "--name", "x", "--scope", "admin"]);
    assert!(!bad.status.success());

    ingest_two_developers(&t).await;
    let mut s = Session::open(&t.mcp_url(), &secret).await;
    let c = s.call_ok("cost_by_developer", json!({})).await;
    assert_eq!(c["totals"]["cost_usd"], 0.75);

    let list = cli(dir, &["token", "list"]);
    assert!(list.status.success());
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(!text.contains(&secret) && !text.contains(&secret[3..]));
    let tokens: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = tokens.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "read", "ci-bot"]);
    let bot = &tokens[2];
    assert_eq!(bot["scope"], "read");
    assert_eq!(bot["developers"], json!([DEV_A]));
    assert!(bot["expires_at"].is_string());
    assert!(bot["revoked_at"].is_null());
    // The secret is stored nowhere: not in the database file, nor in its WAL
    // where a freshly written row still sits.
    let mut stored = Vec::new();
    for name in ["tokentally.db", "tokentally.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            stored.extend(b);
        }
    }
    assert!(stored.len() > 4096, "tokentally.db is missing");
    assert!(!contains(&stored, secret.as_bytes()));
    assert!(!contains(&stored, &secret.as_bytes()[3..]));

    let rev = cli(dir, &["token", "revoke", "ci-bot"]);
    assert!(rev.status.success());
    assert_eq!(String::from_utf8_lossy(&rev.stdout), "revoked ci-bot\n");
    let list = String::from_utf8(cli(dir, &["token", "list"]).stdout).unwrap();
    let bot: Value = serde_json::from_str(list.lines().nth(2).unwrap()).unwrap();
    assert!(bot["revoked_at"].is_string());
    assert!(
        !cli(dir, &["token", "revoke", "no-such-token"])
            .status
            .success()
    );
    // The running server honours the CLI's revocation within its 5 s cache.
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let r = s.call_raw("cost_by_developer", json!({})).await;
    assert_eq!(r.status, 401);
    t.stop().await;
}

// Hardening (1): an MCP session belongs to the token that opened it. Another
// token naming it (a call, the GET stream with Last-Event-ID, DELETE) gets
// 404 as if it did not exist, is audited, and the owner keeps its session.
#[tokio::test]
async fn a_session_is_bound_to_the_token_that_opened_it() {
    let t = start().await;
    ingest_two_developers(&t).await;
    let other = create_token(&t, "other", Scope::Read, &["nobody@example.com"]);
    let mut owner = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    let sid = owner.id.clone().expect("the session has an id");
    let call = rpc_body(
        5,
        "tools/call",
        json!({"name": "cost_by_developer", "arguments": {}}),
    );
    let r = post(
        &owner.http,
        &t.mcp_url(),
        Some(&other),
        Some(&sid),
        &[],
        call,
        Some(&json!(5)),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(!r.text.contains("developer"), "{}", r.text);
    let http = reqwest::Client::new();
    let get = http
        .get(t.mcp_url())
        .header("authorization", format!("Bearer {other}"))
        .header("mcp-session-id", &sid)
        .header("last-event-id", "0/1")
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    let delete = http
        .delete(t.mcp_url())
        .header("authorization", format!("Bearer {other}"))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 404);
    // The owner's session is intact and answers.
    let c = owner.call_ok("cost_by_developer", json!({})).await;
    assert_eq!(c["totals"]["cost_usd"], 3.75, "{c}");
    // Three denials, audited under the other token, without the session id.
    let entries = audit_entries(t.dir.path());
    let denied: Vec<_> = entries
        .iter()
        .filter(|e| {
            e.record
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("did not open"))
        })
        .collect();
    assert_eq!(denied.len(), 3, "{denied:#?}");
    for e in &denied {
        assert_eq!(e.record.outcome, "forbidden");
        assert_eq!(e.record.token_name.as_deref(), Some("other"));
    }
    assert!(!format!("{entries:?}").contains(&sid));
    // The owner may end it; then it is gone for the owner too.
    let delete = http
        .delete(t.mcp_url())
        .header(
            "authorization",
            format!("Bearer {}", t.bootstrap_token("read")),
        )
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert!(delete.status().is_success(), "{}", delete.status());
    let r = owner.call_raw("describe_data", json!({})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    t.stop().await;
}

// A port already taken fails the start before the first-start tokens are
// created, and says which flag moves it; the next start then creates and
// returns them (their secrets are not lost).
#[tokio::test]
async fn a_taken_port_fails_the_start_before_any_token_exists() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = common::test_config(dir.path());
    config.otlp_http_addr = taken.local_addr().unwrap();
    let err = match tokentally::server::start(config.clone()).await {
        Ok(_) => panic!("started on a taken port"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("--otlp-http"), "{err}");
    assert!(
        TokenStore::open(dir.path())
            .unwrap()
            .list()
            .unwrap()
            .is_empty(),
        "tokens were created by a start that failed"
    );
    drop(taken);
    config.otlp_http_addr = "127.0.0.1:0".parse().unwrap();
    let server = tokentally::server::start(config).await.unwrap();
    let scopes: Vec<Scope> = server
        .bootstrap_tokens
        .iter()
        .map(|(i, _)| i.scope)
        .collect();
    assert_eq!(scopes, vec![Scope::Audit, Scope::Read]);
    server.shutdown().await.unwrap();
}

// Hardening (8): the first-start secrets never go to a non-terminal stdout
// (journald, container logs); they are written once to a 0600 file.
#[test]
fn first_start_secrets_go_to_an_owner_only_file_not_to_a_log() {
    use std::io::{BufRead, BufReader};
    let base = tempfile::tempdir().unwrap();
    // A data dir that serve creates itself.
    let dir = base.path().join("new");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .args([
            "serve",
            "--otlp-http",
            "127.0.0.1:0",
            "--otlp-grpc",
            "127.0.0.1:0",
        ])
        .args(["--mcp", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("claude mcp add") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!banner.contains("tt_"), "{banner}");
    assert!(banner.contains("first-start-tokens.txt"), "{banner}");
    let path = dir.join("first-start-tokens.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("tt_").count(), 3, "{text}"); // two tokens, one claude line
    #[cfg(unix)]
    {
        // The data dir is the owner's alone, and so is every file in it.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            files += 1;
        }
        assert!(files >= 3, "the databases and the secrets file");
    }
}

// A data dir that other users may write is refused.
#[cfg(unix)]
#[test]
fn a_data_dir_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .args(["token", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writable by other users"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was created"
    );
}

// CLI: --data-dir after the subcommand, one duration grammar, and read-only
// commands that refuse a data dir that does not exist instead of answering
// from a new empty store.
#[test]
fn cli_options_anywhere_one_duration_grammar_no_silent_empty_store() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("data");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tokentally"))
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap()
    };
    for args in [
        &["query", "cost_by_developer"][..],
        &["token", "list"][..],
        &["audit", "verify"][..],
    ] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no data directory"), "{args:?}: {err}");
        assert_eq!(
            err.matches("no data directory").count(),
            1,
            "said once: {err}"
        );
    }
    assert!(!dir.exists(), "a read-only command created the data dir");
    let out = run(&[
        "token",
        "create",
        "--name",
        "short",
        "--scope",
        "read",
        "--expires",
        "30m",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tt_"));
    let out = run(&["prune", "--retention", "3months"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["token", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"short\""));
    let out = run(&["query", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("cost_by_developer, model_breakdown"));
}
