//! The `integration-host` binary: configuration, logging, then one of the subcommands
//! (`serve`, `check`, `rotate-key`). Everything else lives in the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use host::app::{AppState, router};
use host::crypto::MasterKey;
use host::plugin::{Limits, PluginHost};
use host::store::Store;

/// Integration sources: connect test management to issue trackers through sandboxed plugins.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Directory for the database (`integration.redb`), the master key file and caches.
    #[arg(
        long,
        env = "INTEGRATION_DATA_DIR",
        default_value = "data",
        global = true
    )]
    data_dir: PathBuf,
    /// Directory of provider plugins (`*.wasm`).
    #[arg(
        long,
        env = "INTEGRATION_PLUGINS_DIR",
        default_value = "target/plugins",
        global = true
    )]
    plugins_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the API and the admin page (the default).
    Serve(ServeArgs),
    /// Re-encrypts every stored credential under a new master key and replaces the key file.
    RotateKey,
    /// Loads a plugin in the service's sandbox and calls every export with sample inputs (a
    /// local stand-in tracker, an unreachable one); prints PASS/FAIL per check and exits
    /// non-zero if any check fails.
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The plugin's `.wasm` file.
    path: PathBuf,
    /// A provider setting for the sample source, e.g. `--setting mode=loop` (repeatable).
    #[arg(long = "setting", value_name = "NAME=VALUE")]
    settings: Vec<String>,
    /// A non-secret auth field for the sample source (repeatable).
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// A secret auth field for the sample source (repeatable; default: a sample value). The
    /// host applies it to authenticated requests, as in the service.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    /// The auth type to use (default: the plugin's first).
    #[arg(long)]
    auth_type: Option<String>,
    /// Also call `test-connection` and `fetch-issue` against this real tracker.
    #[arg(long)]
    base_url: Option<String>,
    /// Largest plugin accepted, in bytes (default: the service's limit, 16 MiB).
    #[arg(long)]
    max_plugin_bytes: Option<usize>,
}

/// Parses `ServeArgs` alone, for when no subcommand is given.
#[derive(Parser)]
struct ServeCli {
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "INTEGRATION_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// An admin token to accept (created if missing). Without it, the first start creates
    /// one and prints it once.
    #[arg(long, env = "INTEGRATION_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Seconds between sync passes over the links of enabled sources.
    #[arg(long, env = "INTEGRATION_SYNC_INTERVAL", default_value_t = 300)]
    sync_interval: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let command = match cli.command {
        Some(command) => command,
        // No subcommand: serve with the defaults (and the environment).
        None => Command::Serve(ServeCli::parse_from(["serve"]).args),
    };
    let data_dir = || {
        std::fs::create_dir_all(&cli.data_dir)
            .with_context(|| format!("cannot create {}", cli.data_dir.display()))
    };
    match command {
        Command::Serve(args) => {
            data_dir()?;
            serve(&cli.data_dir, &cli.plugins_dir, args).await
        }
        Command::RotateKey => {
            data_dir()?;
            rotate_key(&cli.data_dir).await
        }
        Command::Check(args) => check(args).await,
    }
}

async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let pairs = |list: &[String], what: &str| -> anyhow::Result<_> {
        list.iter()
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                    .with_context(|| format!("--{what} {p:?}: use NAME=VALUE"))
            })
            .collect::<anyhow::Result<std::collections::BTreeMap<_, _>>>()
    };
    let mut limits = Limits::default();
    if let Some(max) = args.max_plugin_bytes {
        limits.max_plugin_bytes = max;
    }
    let options = host::plugin::check::CheckOptions {
        limits,
        auth_type: args.auth_type,
        fields: pairs(&args.fields, "field")?,
        secrets: pairs(&args.secrets, "secret")?,
        settings: pairs(&args.settings, "setting")?,
        base_url: args.base_url,
        cache_dir: None,
    };
    println!("Checking {}", args.path.display());
    let report = host::plugin::check::check_file(&args.path, &options).await;
    println!("{report}");
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}

async fn serve(data_dir: &Path, plugins_dir: &Path, args: ServeArgs) -> anyhow::Result<()> {
    let store = Store::open(&data_dir.join("integration.redb")).context("opening the database")?;
    let key = MasterKey::load_or_create(&data_dir.join("master.key"))?;
    let plugins = Arc::new(PluginHost::new(
        Limits::default(),
        Some(data_dir.join("compile-cache")),
    )?);
    let loaded = plugins.load_dir(plugins_dir).await;
    let ok = loaded.iter().filter(|(_, r)| r.is_ok()).count();
    tracing::info!(loaded = ok, failed = loaded.len() - ok, dir = %plugins_dir.display(), "plugins");
    if let Some(token) = host::api::tokens::bootstrap_admin(&store, args.admin_token).await? {
        // Printed once, to the terminal only (not the log): only its hash is stored.
        println!("Admin token (shown once, keep it): {token}");
    }
    let state = AppState::new(store, plugins, key, plugins_dir.to_path_buf());
    // New or changed `*.wasm` files in the plugins directory are hot-swapped in.
    host::api::plugins::spawn_watcher(&state, std::time::Duration::from_secs(1));
    let interval = std::time::Duration::from_secs(args.sync_interval.max(1));
    tokio::spawn(host::sync::run(state.clone(), interval));
    let listen = args.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("Integration sources is running: open http://{addr}/");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

async fn rotate_key(data_dir: &Path) -> anyhow::Result<()> {
    let store = Store::open(&data_dir.join("integration.redb"))?;
    let path = data_dir.join("master.key");
    let old = MasterKey::load_or_create(&path)?;
    let (new, bytes) = MasterKey::generate();
    let count = host::store::rotate_secrets(&store, old, new).await?;
    host::crypto::write_key_file(&path, &bytes)?;
    println!(
        "Re-encrypted the credentials of {count} sources; new key written to {}",
        path.display()
    );
    if std::env::var(host::crypto::MASTER_KEY_ENV).is_ok() {
        println!(
            "Note: {} is set; update it to the new key in {}",
            host::crypto::MASTER_KEY_ENV,
            path.display()
        );
    }
    Ok(())
}
