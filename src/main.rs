//! The `tokentally` binary: parses the command line, loads the configuration,
//! initialises logging and calls the library. No logic of its own.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tokentally::config::{Config, IngestAuth};

#[derive(Parser)]
#[command(
    name = "tokentally",
    version,
    about = "Least-privilege MCP access to Claude Code's OpenTelemetry usage telemetry"
)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Log lines on stderr as `text` (default) or `json` (one object a line).
    /// The level is set with TOKENTALLY_LOG (e.g. `debug`, `info,tokentally=debug`).
    #[arg(long, global = true, env = "TOKENTALLY_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

/// Where the store is; accepted before or after any subcommand.
#[derive(Args, Clone)]
struct StoreArgs {
    /// Directory holding the databases (created if missing).
    #[arg(long, global = true, env = "TOKENTALLY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file; flags override it.
    #[arg(long, global = true, env = "TOKENTALLY_CONFIG")]
    config: Option<PathBuf>,
    /// Keep and read the telemetry in ClickHouse rather than the embedded
    /// store: clickhouse://USER:PASSWORD@HOST:8123/DATABASE (the password
    /// may instead come from TOKENTALLY_CLICKHOUSE_PASSWORD or [store]
    /// password_file). Tokens and the audit log live there too.
    #[arg(long, global = true, value_name = "URL", env = "TOKENTALLY_STORE")]
    store: Option<String>,
    /// With --store: the ClickHouse cluster (a remote_servers name) whose
    /// shards hold the tables, created ON CLUSTER behind Distributed tables.
    #[arg(long, global = true, value_name = "NAME", env = "TOKENTALLY_CLUSTER")]
    cluster: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the OTLP receivers (gRPC, HTTP) and the MCP server.
    Serve(ServeArgs),
    /// The ClickHouse store: create its tables, or print them for review.
    Store {
        #[command(subcommand)]
        cmd: StoreCmd,
    },
    /// Create, list and revoke access tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Inspect and verify the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Run one tool locally (the same tools as over MCP, audit tools included), printing JSON.
    Query {
        /// Tool name, e.g. cost_by_developer.
        tool: String,
        /// Tool arguments as a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
        /// One argument as name=value (repeatable; numbers and true/false are
        /// read as such), on top of the JSON object.
        #[arg(long = "arg", value_name = "NAME=VALUE")]
        args: Vec<String>,
        /// json (default, the whole answer), table, csv or markdown (the rows).
        #[arg(long, value_enum, default_value = "json")]
        format: tokentally::tabular::Format,
    },
    /// Fill a separate demo store with a generated team (40 developers, 30
    /// days ending now, sent through the real ingest path); `serve --demo`
    /// serves it.
    Demo {
        /// Events to generate (metric points come on top).
        #[arg(long, default_value_t = 100_000)]
        events: u64,
    },
    /// Print the configuration that makes a coding agent send its
    /// telemetry to this server (for the configured addresses).
    Setup {
        /// claude-code, codex, gemini or opencode.
        #[arg(value_enum)]
        agent: SetupAgent,
        /// Create a read token of this name (and NAME-ingest, when ingest
        /// needs a token) and put the secrets in the output.
        #[arg(long, value_name = "NAME")]
        create_tokens: Option<String>,
        /// Scope of the `claude mcp add` line: user, project or local.
        #[arg(long, value_parser = ["user", "project", "local"])]
        mcp_scope: Option<String>,
        /// Claude Code only: merge the environment into this settings file
        /// (~/.claude/settings.json, or the managed-settings path).
        #[arg(long, value_name = "PATH")]
        write: Option<std::path::PathBuf>,
    },
    /// Print the price table computed cost uses (the shipped list prices
    /// with the config's override file on top), or convert LiteLLM's price
    /// list into an override file.
    Prices {
        /// LiteLLM's model_prices_and_context_window.json to convert.
        #[arg(long, value_name = "FILE")]
        from_litellm: Option<std::path::PathBuf>,
        /// The date to stamp the converted table with (default: today, UTC).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Restate the computed cost of every stored API request with the
    /// price table in force (after an override file was added or changed;
    /// records are priced as they arrive).
    Reprice {
        /// Price table (TOML) laid over the shipped list prices; default:
        /// the config's `[pricing] file`.
        #[arg(long, value_name = "FILE")]
        prices: Option<std::path::PathBuf>,
    },
    /// Check a running server and its store and say what to fix: listeners,
    /// the data directory's permissions, what data arrives from which agents
    /// and versions, senders' clocks, tokens about to expire.
    Doctor {
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A usage report: spend by developer, team and model against the
    /// period before, most edited files, slowest tools, error rates, data
    /// gaps; every number a tool's answer.
    Report {
        /// The period: last_week (default), this_week, last_month, this_month,
        /// yesterday, today, 7d, 30d, or a date to start from.
        #[arg(long, default_value = "last_week")]
        period: String,
        /// End of the period (default: as the period says, or now).
        #[arg(long)]
        until: Option<String>,
        /// IANA time zone of days and weeks (default UTC).
        #[arg(long)]
        timezone: Option<String>,
        /// markdown, html or json.
        #[arg(long, value_enum, default_value = "markdown")]
        format: tokentally::report::Format,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Store OTLP export requests from files: OTLP/JSON (one request, or
    /// JSON Lines as the OpenTelemetry Collector's file exporter writes),
    /// OTLP/protobuf, gzip or zstd compressed or not. Records already
    /// stored are not stored again.
    Import {
        /// Files to read.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Signal of protobuf files whose name does not say it: logs, metrics or traces.
        #[arg(long, value_parser = parse_signal)]
        signal: Option<tokentally::otlp::Signal>,
    },
    /// Copy the databases (telemetry, tokens, audit log) into a new
    /// directory with SQLite's online backup; a running server keeps
    /// working meanwhile. Serve the copy with `--data-dir DIR`.
    Backup {
        /// Directory to write the copy into (created; never overwritten).
        dir: std::path::PathBuf,
    },
    /// Delete data older than the retention period now.
    Prune {
        /// Keep this much, e.g. 90d, 3months, 1 week.
        #[arg(long)]
        retention: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SetupAgent {
    /// Anthropic's Claude Code.
    ClaudeCode,
    /// OpenAI's Codex CLI.
    Codex,
    /// Google's Gemini CLI.
    Gemini,
    /// OpenCode.
    Opencode,
}

/// `tokentally store ...`
#[derive(clap::Subcommand)]
enum StoreCmd {
    /// Create the ClickHouse database and tables if missing and record the
    /// schema version (what `serve --store` does on every start).
    Init {
        /// clickhouse://USER:PASSWORD@HOST:8123/DATABASE (default: [store] url).
        url: Option<String>,
    },
    /// Print the statements that create the ClickHouse schema, for review.
    Schema {
        /// The database the statements name.
        #[arg(default_value = "tokentally")]
        database: String,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, value_parser = parse_listen_addr)]
    otlp_grpc: Option<SocketAddr>,
    /// OTLP/HTTP listen address.
    #[arg(long, value_parser = parse_listen_addr)]
    otlp_http: Option<SocketAddr>,
    /// MCP listen address (endpoint /mcp).
    #[arg(long, value_parser = parse_listen_addr)]
    mcp: Option<SocketAddr>,
    /// Serve Prometheus counters at /metrics on the MCP listener: off
    /// (default), token (a bearer token of scope audit) or open.
    #[arg(long, value_parser = ["off", "token", "open"])]
    metrics: Option<String>,
    /// Serve the web view on its own address (default: on the MCP listener, at /).
    #[arg(long, value_parser = parse_listen_addr)]
    ui: Option<SocketAddr>,
    /// Delete data older than this (e.g. 90d); default keeps everything.
    #[arg(long)]
    retention: Option<String>,
    /// Store prompt text, responses and tool input contents (off by default).
    #[arg(long)]
    capture_content: bool,
    /// Whether ingest needs a token: auto (only on non-loopback binds), required, open.
    #[arg(long, value_parser = parse_ingest_auth)]
    ingest_auth: Option<IngestAuth>,
    /// Serve the demo store (see `tokentally demo`), generating it first if
    /// it does not exist yet.
    #[arg(long)]
    demo: bool,
    /// Price table (TOML) laid over the shipped list prices, for computed
    /// cost: negotiated rates and models the shipped table lacks.
    #[arg(long, value_name = "FILE")]
    prices: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token and print its secret once.
    Create {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// ingest, read, read:content or audit.
        #[arg(long)]
        scope: String,
        /// Restrict to these developers (email, account uuid or user id); repeatable.
        #[arg(long = "developer")]
        developers: Vec<String>,
        /// Expire after this long, e.g. 30m, 12h, 30d, 2w, 1 week, P7D.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (never shows secrets).
    List,
    /// Revoke a token by name.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check the hash chain; exits non-zero and says where if anything was changed.
    Verify {
        /// Fail unless the log holds at least this many records (a count
        /// seen earlier, e.g. by a SIEM: a log cut back since fails).
        #[arg(long)]
        expect_at_least: Option<u64>,
        /// Fail unless the log still holds the record with this hash (the
        /// head_hash of an earlier verify, or the hash of the last line an
        /// export sent elsewhere).
        #[arg(long)]
        head: Option<String>,
    },
    /// Print the last records as JSON lines.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
    /// Export records for a SIEM.
    Export {
        /// Output format (jsonl).
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Only records at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
}

/// A listen address: `IP:PORT`, or `HOST:PORT` resolved now
/// (`localhost:4319`; an IPv4 address is preferred when a name has both).
fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(s)
        .map_err(|e| format!("{s:?} is not HOST:PORT ({e}); e.g. 127.0.0.1:4319"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

fn parse_ingest_auth(s: &str) -> Result<IngestAuth, String> {
    match s {
        "auto" => Ok(IngestAuth::Auto),
        "required" => Ok(IngestAuth::Required),
        "open" => Ok(IngestAuth::Open),
        _ => Err("expected auto, required or open".into()),
    }
}

/// Parses `90d`, `12h`, `2w` into whole days (retention) or a Duration.
fn parse_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    tokentally::duration::parse(s).with_context(|| {
        format!(
            "invalid duration {s:?}: use {}",
            tokentally::duration::FORMS
        )
    })
}

/// Commands that only read refuse a data dir that does not exist, rather
/// than creating an empty store and answering with no data.
fn existing_data_dir(config: &Config) -> anyhow::Result<&Config> {
    if !config.data_dir.is_dir() {
        bail!(
            "no data directory at {}: check --data-dir (serve creates it on first start)",
            config.data_dir.display()
        );
    }
    Ok(config)
}

/// [`existing_data_dir`] for commands that read the store wherever it is:
/// a ClickHouse store needs no data directory.
fn existing_store(config: &Config) -> anyhow::Result<&Config> {
    match config.store.url {
        Some(_) => Ok(config),
        None => existing_data_dir(config),
    }
}

fn load_config(args: &StoreArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &args.store {
        config.store.url = Some(url.clone());
    }
    if let Some(cluster) = &args.cluster {
        config.store.cluster = Some(cluster.clone());
    }
    Ok(config)
}

/// Log filter when `TOKENTALLY_LOG` is unset. The MCP library logs session
/// ids at INFO; a session id lets its holder use the session, so its INFO
/// lines stay off.
const DEFAULT_LOG: &str = "info,rmcp=warn";

fn main() -> std::process::ExitCode {
    // `query --help` lists the tools it can run, from the registry.
    let tools: Vec<&str> = tokentally::mcp::registry::TOOLS
        .iter()
        .map(|t| t.name)
        .collect();
    let command = <Cli as clap::CommandFactory>::command().mut_subcommand("query", |c| {
        c.after_help(format!("Tools: {}", tools.join(", ")))
    });
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with each cause once ("a: b: c"), not a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKENTALLY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(dispatch(cli.store, cli.command))
}

async fn dispatch(store: StoreArgs, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Store { cmd } => match cmd {
            StoreCmd::Init { url } => {
                let mut config = load_config(&store)?;
                if url.is_some() {
                    config.store.url = url;
                }
                let Some(ch) = tokentally::clickhouse::ClickHouse::from_config(&config.store)?
                else {
                    anyhow::bail!(
                        "no ClickHouse store named: give its URL (clickhouse://USER:PASSWORD@HOST:8123/DATABASE) \
                         or set [store] url; the embedded store needs no set-up"
                    );
                };
                ch.init().await?;
                println!(
                    "ClickHouse database {} at {} holds schema version {}",
                    ch.settings().database,
                    ch.settings().http_url,
                    tokentally::clickhouse::schema::VERSION
                );
                Ok(())
            }
            StoreCmd::Schema { database } => {
                let mut text = String::new();
                let config = load_config(&store)?;
                for statement in tokentally::clickhouse::schema::statements(
                    &database,
                    config.store.cluster.as_deref(),
                ) {
                    text.push_str(&statement);
                    text.push_str(";\n");
                }
                print_out(&text)
            }
        },
        Command::Serve(args) if args.demo => {
            let config = demo_config(&store)?;
            if !has_store(&config) {
                fill_demo(&config, DEMO_EVENTS).await?;
            }
            serve(config, args).await
        }
        Command::Serve(args) => serve(load_config(&store)?, args).await,
        Command::Setup {
            agent,
            create_tokens,
            mcp_scope,
            write,
        } => {
            let agent = match agent {
                SetupAgent::ClaudeCode => tokentally::agent::Agent::ClaudeCode,
                SetupAgent::Codex => tokentally::agent::Agent::Codex,
                SetupAgent::Gemini => tokentally::agent::Agent::GeminiCli,
                SetupAgent::Opencode => tokentally::agent::Agent::Opencode,
            };
            let config = load_config(&store)?;
            if write.is_some() && agent != tokentally::agent::Agent::ClaudeCode {
                bail!(
                    "--write is for Claude Code's settings file; the other agents' text says where it goes"
                );
            }
            let mut secrets = tokentally::setup::Secrets {
                mcp_scope,
                ..Default::default()
            };
            if let Some(name) = create_tokens {
                let tokens = token_store(&config).await?;
                let (_, read) = tokens
                    .create(&name, tokentally::auth::Scope::Read, &[], None)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                secrets.read = Some(read);
                if config.ingest_requires_token() {
                    let (_, ingest) = tokens
                        .create(
                            &format!("{name}-ingest"),
                            tokentally::auth::Scope::Ingest,
                            &[],
                            None,
                        )
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    secrets.ingest = Some(ingest);
                }
                eprintln!(
                    "created token {name} (read){}; its secret is shown once, below",
                    if secrets.ingest.is_some() {
                        format!(" and {name}-ingest (ingest)")
                    } else {
                        String::new()
                    }
                );
            }
            if let Some(path) = write {
                let env = tokentally::setup::claude_code_env(&config, &secrets);
                tokentally::setup::write_claude_settings(&path, &env)
                    .map_err(|e| anyhow::anyhow!(e))?;
                eprintln!("merged the telemetry environment into {}", path.display());
            }
            print_out(&tokentally::setup::instructions_with(
                agent, &config, &secrets,
            ))
        }
        Command::Prices {
            from_litellm,
            as_of,
        } => {
            let text = match from_litellm {
                Some(path) => {
                    let json = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
                    tokentally::pricing::from_litellm(&json, as_of.as_deref().unwrap_or(&today))
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                }
                None => {
                    let config = load_config(&store)?;
                    tokentally::pricing::Pricing::load(config.pricing.file.as_deref())?.to_toml()
                }
            };
            print_out(&text)
        }
        Command::Demo { events } => {
            let config = demo_config(&store)?;
            if has_store(&config) {
                anyhow::bail!(
                    "{} already holds a store; serve it with `tokentally serve --demo`, or remove the directory to generate it again",
                    config.data_dir.display()
                );
            }
            fill_demo(&config, events).await?;
            println!("serve it:  tokentally serve --demo");
            println!(
                "ask it:    tokentally --data-dir {} query cost_by_developer '{{\"since\":\"30d\"}}'",
                config.data_dir.display()
            );
            Ok(())
        }
        Command::Token { action } => {
            let config = load_config(&store)?;
            if matches!(action, TokenAction::List) {
                existing_store(&config)?;
            }
            token(config, action).await
        }
        Command::Audit { action } => {
            let config = load_config(&store)?;
            existing_store(&config)?;
            audit(config, action)
        }
        Command::Query {
            tool,
            arguments,
            args,
            format,
        } => {
            let arguments = query_arguments(&arguments, &args)?;
            query(
                existing_store(&load_config(&store)?)?.clone(),
                &tool,
                arguments,
                format,
            )
            .await
        }
        Command::Reprice { prices } => {
            let config = load_config(&store)?;
            let file = prices.or_else(|| config.pricing.file.clone());
            let pricing = tokentally::pricing::Pricing::load(file.as_deref())?;
            let store = tokentally::store::Store::open(
                &existing_data_dir(&config)?.data_dir,
                tokentally::store::StoreOptions::from_config(&config),
            )?;
            let r = store.reprice(std::sync::Arc::new(pricing)).await?;
            store.close().await?;
            println!(
                "repriced {} request(s): {} newly priced, {} now without a price; total cost changed by ${:.6}",
                r.requests, r.newly_priced, r.unpriced, r.cost_delta_usd
            );
            Ok(())
        }
        Command::Doctor { json } => {
            let config = load_config(&store)?;
            let checks = tokentally::doctor::run(&config).await;
            if json {
                print_out(&serde_json::to_string_pretty(&checks)?)?;
            } else {
                for c in &checks {
                    let mark = match c.level {
                        tokentally::doctor::Level::Ok => "ok  ",
                        tokentally::doctor::Level::Warn => "warn",
                        tokentally::doctor::Level::Fail => "FAIL",
                    };
                    print_out(&format!("{mark}  {}: {}", c.what, c.detail))?;
                }
            }
            let failed = checks
                .iter()
                .filter(|c| c.level == tokentally::doctor::Level::Fail)
                .count();
            if failed > 0 {
                bail!("{failed} check(s) failed");
            }
            Ok(())
        }
        Command::Report {
            period,
            until,
            timezone,
            format,
            out,
        } => {
            let config = load_config(&store)?;
            let mut base = serde_json::Map::new();
            base.insert("since".into(), period.into());
            if let Some(u) = until {
                base.insert("until".into(), u.into());
            }
            if let Some(tz) = timezone {
                base.insert("timezone".into(), tz.into());
            }
            report(existing_store(&config)?, &base, format, out.as_deref()).await
        }
        Command::Import { files, signal } => {
            let config = load_config(&store)?;
            import(&config, &files, signal).await
        }
        Command::Backup { dir } => {
            let config = load_config(&store)?;
            let data_dir = existing_data_dir(&config)?.data_dir.clone();
            let copied = tokio::task::spawn_blocking(move || {
                tokentally::store::backup::backup(&data_dir, &dir, |_, _, _| {})
            })
            .await??;
            for c in &copied {
                println!("copied {} ({} bytes)", c.path.display(), c.bytes);
            }
            println!("serve the copy with: tokentally --data-dir <that directory> serve");
            Ok(())
        }
        Command::Prune { retention } => {
            let config = load_config(&store)?;
            let keep = parse_duration(&retention)?;
            let cutoff = jiff::Timestamp::now().as_nanosecond() - keep.as_nanos() as i128;
            let cutoff = i64::try_from(cutoff).unwrap_or(0);
            let r = match tokentally::clickhouse::ClickHouse::from_config(&config.store)? {
                // Whole months on ClickHouse (its partitions).
                Some(ch) => ch.prune(cutoff).await?,
                None => {
                    let store = tokentally::store::Store::open(
                        &config.data_dir,
                        tokentally::store::StoreOptions::from_config(&config),
                    )?;
                    let r = store.prune(cutoff).await?;
                    store.close().await?;
                    r
                }
            };
            println!(
                "pruned {} events, {} metric points, {} spans",
                r.events, r.metric_points, r.spans
            );
            Ok(())
        }
    }
}

/// Prints `text` and a newline on stdout; a reader that went away (`| head`)
/// is not an error.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Events `serve --demo` generates when the demo store does not exist.
const DEMO_EVENTS: u64 = 100_000;

/// The demo store's configuration: `--data-dir` when given, else a
/// `-demo` directory beside the data dir, so demo data never mixes with
/// real data.
fn demo_config(store: &StoreArgs) -> anyhow::Result<Config> {
    let mut config = load_config(store)?;
    if store.data_dir.is_none() {
        let name = config
            .data_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokentally".into());
        config.data_dir = config.data_dir.with_file_name(format!("{name}-demo"));
    }
    Ok(config)
}

fn has_store(config: &Config) -> bool {
    config
        .data_dir
        .join(tokentally::store::DB_FILE_NAME)
        .exists()
}

/// Generates the demo team into the configured store and says what it holds.
async fn fill_demo(config: &Config, events: u64) -> anyhow::Result<()> {
    let store = tokentally::store::Store::open(
        &config.data_dir,
        tokentally::store::StoreOptions::from_config(config),
    )?;
    let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX);
    let plan = tokentally::demo::Plan::team(events, now);
    println!(
        "generating demo data: {} developers, {} days ending now, into {}",
        plan.developers,
        plan.days,
        config.data_dir.display()
    );
    let loaded = tokentally::demo::load(
        &store,
        plan,
        &tokentally::otlp::DecodeOptions::from_config(config)?,
    )
    .await?;
    store.close().await?;
    println!(
        "stored {} events and {} metric points of {} sessions",
        loaded.events, loaded.points, loaded.sessions
    );
    Ok(())
}

async fn serve(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(a) = args.otlp_grpc {
        config.otlp_grpc_addr = a;
    }
    if let Some(a) = args.otlp_http {
        config.otlp_http_addr = a;
    }
    if let Some(a) = args.mcp {
        config.mcp_addr = a;
    }
    if let Some(a) = args.ui {
        config.ui_addr = Some(a);
    }
    if let Some(m) = &args.metrics {
        config.metrics = match m.as_str() {
            "token" => tokentally::config::MetricsAccess::Token,
            "open" => tokentally::config::MetricsAccess::Open,
            _ => tokentally::config::MetricsAccess::Off,
        };
    }
    if let Some(r) = &args.retention {
        let days = parse_duration(r)?.as_secs().div_ceil(86_400);
        config.retention_days = Some(u32::try_from(days).context("retention too long")?);
    }
    if args.capture_content {
        config.capture_content = true;
    }
    if let Some(a) = args.ingest_auth {
        config.ingest_auth = a;
    }
    if let Some(p) = args.prices {
        config.pricing.file = Some(p);
    }
    let server = tokentally::server::start(config.clone()).await?;
    print_banner(&config, &server);
    tokentally::server::run(server, tokentally::server::shutdown_signal()).await?;
    Ok(())
}

fn print_banner(config: &Config, server: &tokentally::server::RunningServer) {
    let http = server.otlp_http_addr;
    let grpc = server.otlp_grpc_addr;
    let mcp = server.mcp_addr;
    println!("tokentally {} is running", env!("CARGO_PKG_VERSION"));
    println!("  data dir:   {}", config.data_dir.display());
    println!("  OTLP/gRPC:  http://{grpc}");
    println!("  OTLP/HTTP:  http://{http}  (/v1/logs, /v1/metrics, /v1/traces)");
    println!("  MCP:        http://{mcp}/mcp");
    println!(
        "  web view:   http://{mcp}/  (on the MCP listener; log in with a read, read:content or audit token)"
    );
    println!(
        "  ingest:     {}",
        if server.ingest_requires_token {
            "requires a token of scope ingest"
        } else {
            "open (loopback only)"
        }
    );
    println!();
    println!("Point Claude Code at it (OTLP over HTTP/protobuf; grpc and http/json work too):");
    println!("  export CLAUDE_CODE_ENABLE_TELEMETRY=1");
    println!("  export OTEL_LOGS_EXPORTER=otlp OTEL_METRICS_EXPORTER=otlp");
    println!("  export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf");
    println!("  export OTEL_EXPORTER_OTLP_ENDPOINT=http://{http}");
    println!("  # or: OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=http://{grpc}");
    if server.ingest_requires_token {
        println!("  export OTEL_EXPORTER_OTLP_HEADERS='Authorization=Bearer <ingest token>'");
    }
    if server.bootstrap_tokens.is_empty() {
        println!();
        println!(
            "Ask it questions (use a read token; `tokentally token create --name me --scope read`):"
        );
        println!(
            "  claude mcp add --transport http tokentally http://{mcp}/mcp --header \"Authorization: Bearer <read token>\""
        );
    } else {
        let read = server
            .bootstrap_tokens
            .iter()
            .find(|(i, _)| i.scope == tokentally::auth::Scope::Read)
            .map(|(_, secret)| secret.as_str())
            .unwrap_or("<read token>");
        let mut text = String::from(
            "First start: these tokens were created. Their secrets are shown only once:\n",
        );
        for (info, secret) in &server.bootstrap_tokens {
            text.push_str(&format!(
                "  {:<8} scope {:<13} {}\n",
                info.name,
                info.scope.as_str(),
                secret
            ));
        }
        text.push_str(&format!(
            "\nAsk it questions from Claude Code:\n  claude mcp add --transport http tokentally http://{mcp}/mcp --header \"Authorization: Bearer {read}\"\n"
        ));
        println!();
        // Secrets go to a person at a terminal, never into a service log:
        // otherwise they are written once to a file only the owner can read.
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            print!("{text}");
        } else {
            match write_first_start_tokens(&config.data_dir, &text) {
                Ok(path) => println!(
                    "First start: the new tokens' secrets were written to {} (mode 0600); read it once and delete it.",
                    path.display()
                ),
                Err(e) => eprintln!(
                    "First start: the new tokens' secrets could not be written ({e}); create new ones with `tokentally token create`."
                ),
            }
            println!();
            println!("Ask it questions from Claude Code (the read token is in that file):");
            println!(
                "  claude mcp add --transport http tokentally http://{mcp}/mcp --header \"Authorization: Bearer <read token>\""
            );
        }
    }
}

/// Writes the first-start secrets to a new file that only the owner can read.
fn write_first_start_tokens(
    data_dir: &std::path::Path,
    text: &str,
) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    // A node on ClickHouse keeps no store, so nothing else made the directory.
    tokentally::datadir::prepare(data_dir).map_err(std::io::Error::other)?;
    let path = data_dir.join("first-start-tokens.txt");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

/// The tokens the CLI manages: those every node shares when the store is
/// ClickHouse (its tables created first, as a node's start would), else
/// the data dir's.
async fn token_store(config: &Config) -> anyhow::Result<tokentally::auth::TokenStore> {
    let ch = tokentally::clickhouse::ClickHouse::from_config(&config.store)?;
    if let Some(ch) = &ch {
        ch.init().await?;
    }
    Ok(tokentally::clickhouse::tokens_for(config, ch.as_ref())?)
}

async fn token(config: Config, action: TokenAction) -> anyhow::Result<()> {
    use tokentally::auth::Scope;
    let tokens = token_store(&config).await?;
    match action {
        TokenAction::Create {
            name,
            scope,
            developers,
            expires,
        } => {
            let Some(scope) = Scope::parse(&scope) else {
                bail!("unknown scope {scope:?}: use ingest, read, read:content or audit");
            };
            let expires = expires.as_deref().map(parse_duration).transpose()?;
            let (info, secret) = tokens.create(&name, scope, &developers, expires)?;
            println!("{secret}");
            eprintln!(
                "created token {:?} (scope {}); the secret above is shown only once",
                info.name,
                info.scope.as_str()
            );
        }
        TokenAction::List => {
            for t in tokens.list()? {
                println!("{}", serde_json::to_string(&t)?);
            }
        }
        TokenAction::Revoke { name } => {
            tokens.revoke(&name)?;
            println!("revoked {name}");
        }
    }
    Ok(())
}

/// How long the CLI's reads of a ClickHouse audit log may take (a whole
/// `verify` or `export` reads every record).
const CLI_AUDIT_BUDGET: std::time::Duration = std::time::Duration::from_secs(3600);

/// What the CLI's local registry asks: the ClickHouse store when the
/// configuration names one (nothing is opened in the data directory then),
/// else the data directory's store, handed back to be closed after.
#[allow(clippy::type_complexity)]
fn local_backends(
    config: &Config,
) -> anyhow::Result<(
    std::sync::Arc<dyn tokentally::query::Questions>,
    Option<std::sync::Arc<dyn tokentally::audit::AuditReader>>,
    Option<tokentally::store::Store>,
)> {
    let ch = tokentally::clickhouse::ClickHouse::from_config(&config.store)?;
    let audit = local_audit(config, ch.as_ref());
    Ok(match ch {
        Some(ch) => (
            tokentally::clickhouse::questions_of(config, ch),
            audit,
            None,
        ),
        None => {
            let store = tokentally::store::Store::open(
                &config.data_dir,
                tokentally::store::StoreOptions::from_config(config),
            )?;
            let questions = std::sync::Arc::new(tokentally::query::runner::Sqlite::with_limits(
                store.clone(),
                &config.query,
            ));
            (questions, audit, Some(store))
        }
    })
}

/// The audit log the local registry's audit tools read, when there is one.
fn local_audit(
    config: &Config,
    ch: Option<&tokentally::clickhouse::ClickHouse>,
) -> Option<std::sync::Arc<dyn tokentally::audit::AuditReader>> {
    tokentally::clickhouse::audit_reader(config, ch, CLI_AUDIT_BUDGET).ok()
}

fn audit(config: Config, action: AuditAction) -> anyhow::Result<()> {
    // Read-only: inspecting the log must not change it (nor create an
    // empty one when --data-dir points elsewhere).
    let ch = tokentally::clickhouse::ClickHouse::from_config(&config.store)?;
    let log = tokentally::clickhouse::audit_reader(&config, ch.as_ref(), CLI_AUDIT_BUDGET)
        .with_context(|| match &ch {
            Some(ch) => format!(
                "cannot read the audit log in ClickHouse database {}",
                ch.settings().database
            ),
            None => format!("cannot open the audit log in {}", config.data_dir.display()),
        })?;
    match action {
        AuditAction::Verify {
            expect_at_least,
            head,
        } => {
            let report = log.verify_with(&tokentally::audit::Witness {
                at_least: expect_at_least,
                head,
            })?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.ok {
                bail!("the audit log has been tampered with");
            }
        }
        AuditAction::Tail { lines } => {
            for rec in log.tail(lines)? {
                println!("{}", serde_json::to_string(&rec)?);
            }
        }
        AuditAction::Export { format, since } => {
            if format != "jsonl" {
                bail!("unsupported format {format:?}: use jsonl");
            }
            let since = since
                .as_deref()
                .map(|s| {
                    s.parse::<jiff::Timestamp>()
                        .with_context(|| format!("invalid --since {s:?}: use RFC 3339"))
                })
                .transpose()?;
            let stdout = std::io::stdout();
            log.export_jsonl(&mut stdout.lock(), since)?;
        }
    }
    Ok(())
}

/// The report's questions asked through the local registry.
struct LocalAsk<'a> {
    registry: &'a tokentally::mcp::Registry,
    principal: &'a tokentally::auth::Principal,
    errors: Vec<String>,
}

impl tokentally::report::Ask for LocalAsk<'_> {
    fn ask<'s>(
        &'s mut self,
        tool: &'static str,
        args: serde_json::Map<String, serde_json::Value>,
    ) -> futures::future::BoxFuture<'s, serde_json::Value> {
        Box::pin(async move {
            let reply = self
                .registry
                .call(self.principal, tool, serde_json::Value::Object(args))
                .await;
            if reply.is_error {
                self.errors.push(format!("{tool}: {}", reply.text));
            }
            reply.structured
        })
    }
}

async fn report(
    config: &Config,
    base: &serde_json::Map<String, serde_json::Value>,
    format: tokentally::report::Format,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let (questions, audit, store) = local_backends(config)?;
    let (registry, principal) = tokentally::mcp::Registry::local(config, questions, audit);
    let mut asker = LocalAsk {
        registry: &registry,
        principal: &principal,
        errors: Vec::new(),
    };
    let report = tokentally::report::build(base, &mut asker).await;
    let errors = asker.errors;
    if let Some(store) = store {
        store.close().await?;
    }
    if let Some(e) = errors.first() {
        bail!("{e}");
    }
    let text = match format {
        tokentally::report::Format::Html => tokentally::web::report::page(&report),
        f => report.render_text(f == tokentally::report::Format::Json),
    };
    match out {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("report written to {}", path.display());
        }
        None => print_out(&text)?,
    }
    Ok(())
}

fn parse_signal(s: &str) -> Result<tokentally::otlp::Signal, String> {
    use tokentally::otlp::Signal;
    match s {
        "logs" => Ok(Signal::Logs),
        "metrics" => Ok(Signal::Metrics),
        "traces" | "spans" => Ok(Signal::Traces),
        other => Err(format!(
            "{other:?} is not a signal: logs, metrics or traces"
        )),
    }
}

async fn import(
    config: &Config,
    files: &[std::path::PathBuf],
    signal: Option<tokentally::otlp::Signal>,
) -> anyhow::Result<()> {
    // Where the receivers would write: ClickHouse (its tables created
    // first, as a node's start would), else the data directory's store.
    let (sink, store): (
        std::sync::Arc<dyn tokentally::store::Sink>,
        Option<tokentally::store::Store>,
    ) = match tokentally::clickhouse::ClickHouse::from_config(&config.store)? {
        Some(ch) => {
            ch.init().await?;
            let sink = tokentally::clickhouse::sink::Sink::start(ch, config.store.batching);
            (std::sync::Arc::new(sink), None)
        }
        None => {
            let store = tokentally::store::Store::open(
                &config.data_dir,
                tokentally::store::StoreOptions::from_config(config),
            )?;
            (std::sync::Arc::new(store.clone()), Some(store))
        }
    };
    let opts = tokentally::otlp::DecodeOptions::from_config(config)?;
    let bar = indicatif::ProgressBar::new(tokentally::import::total_bytes(files));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let result = tokentally::import::import(sink, &opts, files, signal, |n| bar.inc(n)).await;
    bar.finish_and_clear();
    let embedded = store.is_some();
    if let Some(store) = store {
        store.close().await?;
    }
    let r = result?;
    if embedded {
        println!(
            "read {} file(s), {} export request(s): stored {} record(s), {} already stored, {} refused",
            r.files, r.requests, r.stored, r.duplicates, r.refused_records
        );
    } else {
        println!(
            "read {} file(s), {} export request(s): wrote {} record(s) to ClickHouse (one already there counts once), {} refused",
            r.files, r.requests, r.stored, r.refused_records
        );
    }
    for (place, why) in &r.failures {
        eprintln!("not imported: {place}: {why}");
    }
    if !r.failures.is_empty() {
        bail!(
            "{} request(s), line(s) or file(s) could not be read (listed above); everything else was stored",
            r.failures.len()
        );
    }
    Ok(())
}

/// The JSON object of `query`'s arguments with each `--arg name=value` on top.
fn query_arguments(json: &str, pairs: &[String]) -> anyhow::Result<serde_json::Value> {
    let mut args: serde_json::Value =
        serde_json::from_str(json).context("arguments must be a JSON object")?;
    let Some(obj) = args.as_object_mut() else {
        bail!("arguments must be a JSON object, e.g. '{{\"since\":\"7d\"}}'");
    };
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--arg {pair:?} must be name=value, e.g. --arg since=7d");
        };
        let value = match serde_json::from_str::<serde_json::Value>(value) {
            Ok(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v,
            _ => serde_json::Value::String(value.to_string()),
        };
        obj.insert(name.trim().to_string(), value);
    }
    Ok(args)
}

async fn query(
    config: Config,
    tool: &str,
    args: serde_json::Value,
    format: tokentally::tabular::Format,
) -> anyhow::Result<()> {
    let (questions, audit, store) = local_backends(&config)?;
    let (registry, principal) = tokentally::mcp::Registry::local(&config, questions, audit);
    let reply = registry.call(&principal, tool, args).await;
    // An error is the error object, whatever the format.
    let format = if reply.is_error {
        tokentally::tabular::Format::Json
    } else {
        format
    };
    let summary = reply.text.lines().next().unwrap_or("");
    print_out(tokentally::tabular::render(&reply.structured, summary, format).trim_end())?;
    if format == tokentally::tabular::Format::Json {
        eprintln!("{}", reply.text);
    }
    if let Some(store) = store {
        store.close().await?;
    }
    if reply.is_error {
        bail!("the tool reported an error");
    }
    Ok(())
}
