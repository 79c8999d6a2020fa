//! The `slotline` command line: `serve`, `worker`, `migrate`, `token create|list|revoke`, `dialplan check|apply`,
//! `livekit sync`, `chat`.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid configuration, usage or dialplan file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use std::sync::Arc;

use crate::agent::chat;
use crate::api::auth::generate_token;
use crate::app::{open_store, Application};
use crate::calendar::{CalendarRegistry, SystemClock};
use crate::config::{Config, Overrides};
use crate::dialplan;
use crate::livekit::{self, LivekitSettings};
use crate::phone;
use crate::storage::crypto::MasterKey;
use crate::storage::{ApiTokenRecord, TokenScope};

/// Exit code for invalid configuration, usage or input files.
pub const EXIT_INVALID: u8 = 2;

/// slotline: a telephony-first SIP voice gateway whose AI voice agents book appointments.
#[derive(Debug, Parser)]
#[command(name = "slotline", version, about)]
pub struct Cli {
    /// Configuration file (default: ./slotline.toml when it exists).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (setting `data_dir`, env SLOTLINE_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, sqlite://PATH or postgres://... (setting `database.url`, env SLOTLINE_DATABASE__URL).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: admin API and /metrics (migrates the database first).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Validate or load dialplan files (numbers → agents).
    #[command(subcommand)]
    Dialplan(DialplanCommand),
    /// Talk to an agent in text: the same dialog engine, tools, calendar and database as a call.
    Chat(ChatArgs),
    /// Run the LiveKit agent worker only: take the rooms LiveKit dispatches (needs livekit.*).
    Worker,
    /// LiveKit: reconcile LiveKit SIP with slotline's numbers.
    #[command(subcommand)]
    Livekit(LivekitCommand),
}

/// `livekit` subcommands.
#[derive(Debug, Subcommand)]
pub enum LivekitCommand {
    /// Make LiveKit SIP route what slotline routes: one inbound trunk, dispatch rules to the worker.
    Sync {
        /// Print the changes without making them.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Flags of `chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The agent, by id or name.
    #[arg(long, value_name = "ID|NAME")]
    pub agent: String,
    /// Caller id to chat as (E.164 or any common notation), used to find and book appointments.
    #[arg(long = "as", value_name = "NUMBER")]
    pub caller: Option<String>,
}

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Admin API address (setting `api.addr`, env SLOTLINE_API__ADDR).
    #[arg(long, value_name = "ADDR")]
    pub api_addr: Option<std::net::SocketAddr>,
    /// Metrics address (setting `metrics.addr`, env SLOTLINE_METRICS__ADDR).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; it is printed once on standard output and stored hashed.
    Create {
        /// Who or what the token is for.
        #[arg(long)]
        name: String,
        /// `admin` (read and write) or `analyst` (read only).
        #[arg(long, value_enum)]
        scope: TokenScope,
        /// Refuse the token this many days after now (default: it never expires).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// List the tokens: id, name, scope, creation and expiry (never the token itself).
    List,
    /// Revoke a token: it is deleted and refused from the next request on.
    Revoke {
        /// The token's id, as `token list` shows it.
        id: Uuid,
    },
}

/// `dialplan` subcommands.
#[derive(Debug, Subcommand)]
pub enum DialplanCommand {
    /// Validate a dialplan file (syntax, numbers, agent names); exit 2 with FILE:LINE:COL errors.
    Check {
        /// The dialplan file.
        file: PathBuf,
    },
    /// Validate, then upsert every route of a dialplan file (running it twice changes nothing).
    Apply {
        /// The dialplan file.
        file: PathBuf,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        api_addr: match &cli.command {
            Command::Serve(args) => args.api_addr,
            _ => None,
        },
        metrics_addr: match &cli.command {
            Command::Serve(args) => args.metrics_addr,
            _ => None,
        },
    };
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        // A chat shows the conversation; routine logs would drown it unless asked for.
        Ok(mut config) if matches!(cli.command, Command::Chat(_)) && config.log.level == "info" => {
            config.log.level = "warn".into();
            config
        }
        Ok(config) => config,
        Err(e) => {
            eprintln!("slotline: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    crate::telemetry::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("slotline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, &config)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "slotline failed");
            eprintln!("slotline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: &Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(_) => serve(config).await,
        Command::Migrate => {
            open_store(config).await?;
            println!("database is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Create { name, scope, expires_in_days }) => {
            create_token(config, &name, scope, expires_in_days).await
        }
        Command::Token(TokenCommand::List) => list_tokens(config).await,
        Command::Token(TokenCommand::Revoke { id }) => revoke_token(config, id).await,
        Command::Dialplan(DialplanCommand::Check { file }) => dialplan_command(config, &file, false).await,
        Command::Dialplan(DialplanCommand::Apply { file }) => dialplan_command(config, &file, true).await,
        Command::Chat(args) => chat(config, &args).await,
        Command::Worker => worker(config).await,
        Command::Livekit(LivekitCommand::Sync { dry_run }) => livekit_sync(config, dry_run).await,
    }
}

fn livekit_settings(config: &Config) -> Option<LivekitSettings> {
    match LivekitSettings::from_config(&config.livekit) {
        Ok(settings) => Some(settings),
        Err(e) => {
            eprintln!("slotline: {e}");
            None
        }
    }
}

async fn livekit_sync(config: &Config, dry_run: bool) -> anyhow::Result<ExitCode> {
    let Some(settings) = livekit_settings(config) else { return Ok(ExitCode::from(EXIT_INVALID)) };
    let store = open_store(config).await?;
    let report = livekit::sync::run(&settings, store.as_ref(), dry_run).await?;
    for change in &report.changes {
        println!("{}{change}", if dry_run { "would " } else { "" });
    }
    match (report.changes.len(), dry_run) {
        (0, _) => println!("LiveKit SIP is in sync"),
        (n, true) => println!("{n} change(s) planned, none made (--dry-run)"),
        (n, false) => println!("{n} change(s) made"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn worker(config: &Config) -> anyhow::Result<ExitCode> {
    let Some(settings) = livekit_settings(config) else { return Ok(ExitCode::from(EXIT_INVALID)) };
    let store = open_store(config).await?;
    let (master_key, _) = MasterKey::load(config.master_key.as_ref().map(|k| k.expose()), &config.data_dir)
        .context("loading the master key")?;
    let calendars =
        Arc::new(CalendarRegistry::new(store.clone(), Arc::new(master_key), Arc::new(SystemClock), &config.calcom));
    let handler: Option<Arc<dyn crate::call::CallHandler>> = if config.voice.enabled {
        Some(Arc::new(crate::app::agent_calls(config, store.clone(), calendars).await?))
    } else {
        None
    };
    let settings = Arc::new(settings);
    let worker = crate::app::livekit_worker(config, settings.clone(), store, handler)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    let metrics = tokio::spawn(crate::app::serve_metrics(config.metrics.addr, shutdown.clone()));
    eprintln!("slotline: LiveKit worker `{}` for {}", settings.config.agent_name, settings.ws_url);
    worker.run(shutdown.clone()).await;
    shutdown.cancel();
    metrics.await.context("metrics task")??;
    Ok(ExitCode::SUCCESS)
}

async fn chat(config: &Config, args: &ChatArgs) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal as _;

    let caller = match args.caller.as_deref().map(phone::normalize).transpose() {
        Ok(caller) => caller.map(|n| n.as_str().to_string()),
        Err(e) => {
            eprintln!("slotline: --as: {e}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let store = open_store(config).await?;
    let agent = match Uuid::parse_str(&args.agent) {
        Ok(id) => store.get_agent(id).await?,
        Err(_) => store.find_agent_by_name(&args.agent).await?,
    };
    let Some(agent) = agent else {
        let names: Vec<String> = store.list_agents().await?.into_iter().map(|a| a.name).collect();
        eprintln!("slotline: no agent `{}` (agents: {})", args.agent, names.join(", "));
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let (master_key, _) = MasterKey::load(config.master_key.as_ref().map(|k| k.expose()), &config.data_dir)
        .context("loading the master key")?;
    let calendars = CalendarRegistry::new(store, Arc::new(master_key), Arc::new(SystemClock), &config.calcom);
    let style = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        chat::Style::Terminal
    } else {
        chat::Style::Plain
    };
    let (conversation, interim) = chat::conversation(&config.dialog, &calendars, agent, caller);
    let input = tokio::io::BufReader::new(tokio::io::stdin());
    let outcome = chat::run(conversation, interim, input, &mut std::io::stdout(), style).await?;
    tracing::info!(outcome = outcome.as_str(), "chat ended");
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: &Config) -> anyhow::Result<ExitCode> {
    let app = Application::build(config).await?;
    eprintln!("slotline: admin API on http://{}  metrics on http://{}/metrics", app.api_addr(), app.metrics_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    app.run(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
async fn signal_shutdown(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
    shutdown.cancel();
}

async fn create_token(
    config: &Config,
    name: &str,
    scope: TokenScope,
    expires_in_days: Option<u32>,
) -> anyhow::Result<ExitCode> {
    let name = name.trim();
    if name.is_empty() {
        eprintln!("slotline: --name must not be empty");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let store = open_store(config).await?;
    let token = generate_token();
    let created_at = crate::storage::now();
    let record = ApiTokenRecord {
        id: Uuid::new_v4(),
        name: name.to_string(),
        scope,
        token_hash: token.hash,
        created_at,
        expires_at: expires_in_days.map(|days| created_at + chrono::Duration::days(i64::from(days))),
    };
    store.insert_token(&record).await.context("storing the token")?;
    tracing::info!(token_id = %record.id, name, scope = scope.as_str(), "API token created");
    eprintln!(
        "Created {} token `{name}`. It is shown once; use it as `Authorization: Bearer <token>`:",
        scope.as_str()
    );
    println!("{}", token.secret);
    Ok(ExitCode::SUCCESS)
}

async fn list_tokens(config: &Config) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let now = crate::storage::now();
    println!("{:<36}  {:<7}  {:<20}  {:<20}  NAME", "ID", "SCOPE", "CREATED", "EXPIRES");
    for token in store.list_tokens().await.context("listing tokens")? {
        let expires = match token.expires_at {
            None => "never".to_string(),
            Some(_) if token.is_expired(now) => "expired".to_string(),
            Some(at) => at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        };
        let created = token.created_at.format("%Y-%m-%dT%H:%M:%SZ");
        println!("{:<36}  {:<7}  {created:<20}  {expires:<20}  {}", token.id, token.scope.as_str(), token.name);
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke_token(config: &Config, id: Uuid) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    if !store.delete_token(id).await.context("revoking the token")? {
        eprintln!("slotline: no token with id {id} (see `slotline token list`)");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    tracing::info!(token_id = %id, "API token revoked");
    eprintln!("Revoked token {id}; requests with it are refused from now on.");
    Ok(ExitCode::SUCCESS)
}

async fn dialplan_command(config: &Config, file: &Path, apply: bool) -> anyhow::Result<ExitCode> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", file.display());
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let report_errors = |errors: &[dialplan::DialplanError]| {
        for error in errors {
            eprintln!("{}:{error}", file.display());
        }
        eprintln!("{}: {} error(s)", file.display(), errors.len());
        ExitCode::from(EXIT_INVALID)
    };
    let plan = match dialplan::file::parse(&text) {
        Ok(plan) => plan,
        Err(errors) => return Ok(report_errors(&errors)),
    };
    let store = open_store(config).await?;
    let errors = dialplan::check(store.as_ref(), &plan).await?;
    if !errors.is_empty() {
        return Ok(report_errors(&errors));
    }
    if apply {
        let report = dialplan::apply(store.as_ref(), &plan).await?;
        println!("{}: applied {} number(s) and {} prefix(es)", file.display(), report.numbers, report.prefixes);
    } else {
        println!("{}: ok, {} route(s)", file.display(), plan.routes.len());
    }
    Ok(ExitCode::SUCCESS)
}
