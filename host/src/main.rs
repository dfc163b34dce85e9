//! The `integration-host` binary: configuration (flags > environment > config file >
//! defaults, see `host::config`), logging, then one of the subcommands (`serve`, `check`,
//! `rotate-key`, `export`, `import`, `migrate`, `new-plugin`, `dev`). Everything else lives in
//! the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use host::app::{AppState, router};
use host::config::{Config, LogFormat, Settings};
use host::plugin::PluginHost;
use host::plugin_registry::signatures::SigningPolicy;
use host::store::Store;

/// Integration sources: connect test management to issue trackers through sandboxed plugins.
#[derive(Parser)]
#[command(version, after_long_help = CONFIG_HELP)]
struct Cli {
    /// Every configuration option (each also settable in the config file).
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The configuration file, after the options in `--help`.
const CONFIG_HELP: &str = "\
Configuration: each option is taken from its flag, else its environment variable, else the
configuration file (--config, INTEGRATION_CONFIG, else <data-dir>/config.toml if it exists),
else its default; nothing needs to be set. The file is TOML with the keys named in [file: ...]
above (unknown keys are an error), e.g.:

    listen = \"0.0.0.0:8080\"
    plugins_dir = \"/opt/integration/plugins\"
    sync_interval_secs = 120
    log_format = \"json\"

    [limits]
    cpu_ms = 1000
    max_concurrent_calls = 32

The master key is INTEGRATION_MASTER_KEY (base64 of 32 bytes) if set, else the key file; a
key that does not open the database's key check is refused at start.
Log verbosity: RUST_LOG (default info).";

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
    /// Writes every source as TOML, without secrets: each secret field becomes a reference
    /// `"${ENV_VAR}"` (listed in the file's header) to set before an import.
    Export(ExportArgs),
    /// Creates or updates sources by display name from a TOML file (as written by `export`),
    /// all or nothing, validated like the API. Secret references are read from the environment
    /// (`"${ENV_VAR}"`) or files (`{ file = "/path" }`). The service must not be running on the
    /// same data directory (use `POST /api/v1/sources/import` then).
    Import(ImportArgs),
    /// Copies the redb database of the data directory (sealed credentials as they are: keep
    /// the same master key) into an empty PostgreSQL database, in one transaction that checks
    /// the counts and a digest of everything before it commits; a failure leaves the target
    /// empty. Stop the service first.
    Migrate(MigrateArgs),
    /// Makes a ready provider plugin project in a new directory, from the template embedded in
    /// this binary, with its README saying how to build and check it.
    NewPlugin(NewPluginArgs),
    /// Runs a plugin project against a local host while you work on it: every new build of its
    /// plugin file is checked (PASS/FAIL lines, as `check` prints them) and swapped into a host
    /// served with the admin page and a fresh admin token. Ctrl-C stops it; the host's data is
    /// temporary.
    Dev(DevArgs),
}

#[derive(clap::Args)]
struct DevArgs {
    /// The plugin project's directory (with its Cargo.toml, package.json or pyproject.toml).
    dir: PathBuf,
    /// The plugin file the project's build writes [default: found from the project's kind].
    #[arg(long, value_name = "PATH")]
    wasm: Option<PathBuf>,
    /// Recorded tracker answers (JSON) for the checks' stand-in, as `check --fixtures`
    /// [default: DIR/fixtures.json when there is one].
    #[arg(long, value_name = "FILE")]
    fixtures: Option<PathBuf>,
    /// Also run the project's build command (cargo, `npm run build`, componentize-py) at the
    /// start and whenever a source file changes.
    #[arg(long)]
    build: bool,
    /// Address the local host listens on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

#[derive(clap::Args)]
struct NewPluginArgs {
    /// The provider id, kebab-case (e.g. `redmine`, `acme-tracker`).
    name: String,
    /// The plugin's language.
    #[arg(long, value_enum, default_value = "rust")]
    lang: host::scaffold::Lang,
    /// The project directory (new or empty) [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// The target database, `postgres://user:password@host/db` (empty; its schema is created).
    #[arg(long, value_name = "URL")]
    to: host::store::DatabaseUrl,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The sources file (TOML).
    file: PathBuf,
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
    /// Also call `test-connection`, `fetch-issue` and `fetch-issues` against this real
    /// tracker, with the given credentials: a refused credential fails the check.
    #[arg(long)]
    base_url: Option<String>,
    /// Recorded tracker answers (JSON) for the local stand-in, which must then make the happy
    /// path succeed; see `docs/writing-a-provider.md`.
    #[arg(long, value_name = "FILE")]
    fixtures: Option<PathBuf>,
}

/// Parses `ServeArgs` alone, for when no subcommand is given.
#[derive(Parser)]
struct ServeCli {
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The preset admin token: accepted, and the only preset one (a start with a new value
    /// revokes the previous preset; tokens made through the API stay). Without any, the first
    /// start creates an admin token and prints it once. On the command line it is visible in
    /// the process list: prefer the environment variable or --admin-token-file.
    #[arg(long, env = "INTEGRATION_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// A file holding the preset admin token (see --admin-token), read at start.
    #[arg(long, env = "INTEGRATION_ADMIN_TOKEN_FILE", value_name = "PATH")]
    admin_token_file: Option<PathBuf>,
}

impl ServeArgs {
    /// The preset admin token, from the file or the flag/environment variable (not both).
    fn preset_admin_token(&self) -> anyhow::Result<Option<String>> {
        let on_command_line = std::env::args_os().any(|a| {
            a.to_str()
                .is_some_and(|a| a == "--admin-token" || a.starts_with("--admin-token="))
        });
        if on_command_line {
            tracing::warn!(
                "--admin-token on the command line can be read by every user of this machine in \
                 the process list: use --admin-token-file or INTEGRATION_ADMIN_TOKEN"
            );
        }
        let Some(path) = &self.admin_token_file else {
            return Ok(self.admin_token.clone());
        };
        if self.admin_token.is_some() {
            anyhow::bail!(
                "the admin token is given twice (--admin-token-file and --admin-token or \
                 INTEGRATION_ADMIN_TOKEN): use one"
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            anyhow::bail!("the admin token file {} is empty", path.display());
        }
        host::keys::warn_if_exposed(path, "admin token file");
        Ok(Some(token.to_string()))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = parse_cli();
    let config = host::config::resolve(&cli.settings)?;
    // `dev` talks to a person at the terminal: its own lines, and only the log's warnings.
    let default_level = match cli.command {
        Some(Command::Dev(_)) => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_level.into());
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    if let Some(file) = &config.file {
        tracing::info!(file = %file.display(), "configuration file");
    }
    let command = match cli.command {
        Some(command) => command,
        // No subcommand: serve with the defaults (and the environment).
        None => Command::Serve(ServeCli::parse_from(["serve"]).args),
    };
    let data_dir = || {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))
    };
    match command {
        Command::Serve(args) => {
            data_dir()?;
            serve(&config, args).await
        }
        Command::RotateKey => {
            data_dir()?;
            rotate_key(&config).await
        }
        Command::Check(args) => check(&config, args).await,
        Command::Export(args) => {
            data_dir()?;
            export(&config, args).await
        }
        Command::Import(args) => {
            data_dir()?;
            import(&config, args).await
        }
        Command::Migrate(args) => migrate(&config, args).await,
        Command::NewPlugin(args) => new_plugin(args),
        Command::Dev(args) => dev(&config, args).await,
    }
}

/// The subcommands that take none of the service's options (`NOT_FOR_CHECK`; `dev` has its own
/// `--listen`).
const WITHOUT_SERVICE_OPTIONS: &[&str] = &["check", "new-plugin", "dev"];

/// The subcommand that takes none of the configuration options: its `--help` hides them, and
/// one given after it is refused.
const WITHOUT_ANY_OPTIONS: &str = "new-plugin";

/// The service's options that `check` does not use (ids of `Settings` fields): given to every
/// subcommand but those `WITHOUT_SERVICE_OPTIONS`, so `check --help` lists only what applies
/// and `check` refuses them.
const NOT_FOR_CHECK: &[&str] = &[
    "plugins_dir",
    "listen",
    "master_key_file",
    "sync_interval",
    "allow_loopback_targets",
    "max_connections",
    "header_timeout",
    "body_timeout",
    "database_url",
    "database_pool_size",
    "trusted_plugin_keys",
    "require_signed_plugins",
];

/// The command line: the configuration options go before or after any subcommand
/// (`--data-dir X rotate-key`, `serve --listen X`), but `check` takes only those it uses. With
/// `env: false` the copies after the subcommand read no environment variable.
fn cli_command(env: bool) -> clap::Command {
    let not_for_check = |arg: &clap::Arg| NOT_FOR_CHECK.contains(&arg.get_id().as_str());
    let command = Cli::command().mut_args(|arg| {
        if not_for_check(&arg) {
            arg.global(false)
        } else {
            arg
        }
    });
    let service: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| not_for_check(arg))
        .map(|arg| {
            if env {
                arg.clone()
            } else {
                arg.clone().env(None)
            }
        })
        .collect();
    let others: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .filter(|name| !WITHOUT_SERVICE_OPTIONS.contains(&name.as_str()))
        .collect();
    let mut command = others.into_iter().fold(command, |command, name| {
        command.mut_subcommand(name, |sub| sub.args(service.clone()))
    });
    // Built now, so that the global options are copied into the subcommands and can be
    // changed there.
    command.build();
    command.mut_subcommand(WITHOUT_ANY_OPTIONS, |sub| {
        sub.mut_args(|arg| match arg.is_global_set() {
            true => arg.hide(true).env(None).value_parser(refused),
            false => arg,
        })
    })
}

/// The value parser of an option a subcommand does not take.
fn refused(_: &str) -> Result<String, String> {
    Err(format!(
        "{WITHOUT_ANY_OPTIONS} takes no configuration options"
    ))
}

/// Parses the command line: a flag after the subcommand wins over one before it, and either
/// over its environment variable.
fn parse_cli() -> Cli {
    let matches = cli_command(true).get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let flags = cli_command(false).get_matches();
    if let Some((_, flags)) = flags
        .subcommand()
        .filter(|(name, _)| !WITHOUT_SERVICE_OPTIONS.contains(name))
    {
        cli.settings
            .update_from_arg_matches(flags)
            .unwrap_or_else(|e| e.exit());
    }
    cli
}

/// Writes a new plugin project; the SDK dependency gets this repository's path besides its
/// version when the binary runs from a checkout that has it.
fn new_plugin(args: NewPluginArgs) -> anyhow::Result<()> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sdk")).ok();
    let files = host::scaffold::create(&args.name, args.lang, &dir, sdk.as_deref())
        .map_err(anyhow::Error::msg)?;
    for file in &files {
        println!("created {}", file.display());
    }
    println!(
        "Plugin project {} ready in {}: see its README.md to build and check it.",
        args.name,
        dir.display()
    );
    Ok(())
}

/// The vendor's loop (`host::dev`): a local host on a temporary data directory, with the
/// plugin project's builds checked and swapped in, until Ctrl-C.
async fn dev(config: &Config, args: DevArgs) -> anyhow::Result<()> {
    let project =
        host::dev::Project::find(&args.dir, args.wasm.as_deref()).map_err(anyhow::Error::msg)?;
    let fixtures = (args.fixtures.clone())
        .or_else(|| Some(args.dir.join("fixtures.json")).filter(|f| f.is_file()));
    let fixtures = (fixtures.as_deref())
        .map(host::plugin::check::Fixtures::load)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let data = tempfile::Builder::new()
        .prefix("integration-host-dev-")
        .tempdir()
        .context("cannot create a temporary data directory")?;
    let (state, token) = dev_host(config, data.path()).await?;
    let listen = args.listen.unwrap_or(config.listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (choose another with --listen)"))?;
    let addr = listener.local_addr()?;
    if let Some(token) = token {
        println!("Admin token (shown once, keep it): {token}");
    }
    println!("Integration sources is running: open http://{addr}/");
    println!("Data (deleted at exit): {}", data.path().display());
    println!(
        "Watching {} for new builds; Ctrl-C stops.",
        project.wasm.display()
    );
    let options = host::dev::DevOptions {
        check: host::plugin::check::CheckOptions {
            limits: config.limits.clone(),
            cache_dir: Some(data.path().join("compile-cache")),
            fixtures,
            ..Default::default()
        },
        build: args.build,
        every: std::time::Duration::from_millis(500),
    };
    let watcher = tokio::spawn(host::dev::run(state.clone(), project, options));
    host::api::server::serve(listener, router(state), config.http, shutdown_signal()).await;
    watcher.abort();
    println!("Stopped.");
    Ok(())
}

/// `dev`'s local host on `data`: a new store and admin token (returned), no plugin yet, the
/// sync worker running. Sources made in its page may reach trackers on this machine.
async fn dev_host(
    config: &Config,
    data: &std::path::Path,
) -> anyhow::Result<(AppState, Option<String>)> {
    let store = Store::open(&data.join("integration.redb")).context("opening the database")?;
    let key = host::keys::unlock(&store, &data.join("master.key")).await?;
    let plugins = Arc::new(
        PluginHost::new(config.limits.clone(), Some(data.join("compile-cache")))?
            .allow_loopback_targets(true)?,
    );
    let token = host::tokens::bootstrap_admin(&store, None).await?;
    let state = AppState::new(store, plugins, key, data.join("plugins"));
    tokio::spawn(host::sync::run(state.clone(), config.sync_interval));
    Ok((state, token))
}

/// Connects to the PostgreSQL database if one is configured; else opens the redb file,
/// checked whole (a damaged file is refused), and warns if others can read it.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if let Some(url) = &config.database_url {
        let store = Store::connect(url, config.database_pool_size)
            .await
            .with_context(|| format!("opening the database {url}"))?;
        tracing::info!(database = %url, "database (PostgreSQL)");
        return Ok(store);
    }
    let path = config.database();
    let store = Store::open(&path).context("opening the database")?;
    host::keys::warn_if_exposed(&path, "database");
    Ok(store)
}

async fn migrate(config: &Config, args: MigrateArgs) -> anyhow::Result<()> {
    let path = config.database();
    if !path.is_file() {
        anyhow::bail!("there is no database at {} to migrate", path.display());
    }
    args.to.check().map_err(anyhow::Error::msg)?;
    let from = Store::open(&path).context("opening the database")?;
    let to = Store::connect(&args.to, 2)
        .await
        .with_context(|| format!("opening the database {}", args.to))?;
    let copied = host::store::migrate::copy(&from, &to)
        .await
        .with_context(|| format!("nothing migrated to {}", args.to))?;
    for (table, count) in &copied.counts {
        println!("{table}: {count}");
    }
    println!(
        "Migrated {} to {} (sha-256 of everything copied, verified: {}). Start the service \
         with --database-url and the same master key.",
        path.display(),
        args.to,
        copied.digest
    );
    Ok(())
}

async fn export(config: &Config, args: ExportArgs) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let text = host::sources_as_code::export(&store)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("Sources written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

async fn import(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let store = open_store(config).await?;
    let key = host::keys::unlock(&store, &config.master_key_file).await?;
    let plugins = PluginHost::new(config.limits.clone(), Some(config.compile_cache()))?;
    plugins.set_signing(signing_policy(config)?);
    for (path, result) in plugins.load_dir(&config.plugins_dir).await {
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "plugin not loaded");
        }
    }
    let who = format!("command line ({})", args.file.display());
    let report = host::sources_as_code::import(
        &store,
        &plugins,
        &key,
        &text,
        &who,
        host::sources_as_code::References::Any,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
    .with_context(|| format!("nothing imported from {}", args.file.display()))?;
    for (what, names) in [
        ("created", &report.created),
        ("updated", &report.updated),
        ("unchanged", &report.unchanged),
    ] {
        for name in names {
            println!("{what}: {name}");
        }
    }
    println!(
        "Imported {}: {} created, {} updated, {} unchanged",
        args.file.display(),
        report.created.len(),
        report.updated.len(),
        report.unchanged.len()
    );
    Ok(())
}

async fn check(config: &Config, args: CheckArgs) -> anyhow::Result<()> {
    let pairs = |list: &[String], what: &str| -> anyhow::Result<_> {
        list.iter()
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                    .with_context(|| format!("--{what} {p:?}: use NAME=VALUE"))
            })
            .collect::<anyhow::Result<std::collections::BTreeMap<_, _>>>()
    };
    let options = host::plugin::check::CheckOptions {
        limits: config.limits.clone(),
        auth_type: args.auth_type,
        fields: pairs(&args.fields, "field")?,
        secrets: pairs(&args.secrets, "secret")?,
        settings: pairs(&args.settings, "setting")?,
        base_url: args.base_url,
        cache_dir: None,
        fixtures: (args.fixtures.as_deref())
            .map(host::plugin::check::Fixtures::load)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    println!("Checking {}", args.path.display());
    let report = host::plugin::check::check_file(&args.path, &options).await;
    println!("{report}");
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}

/// The operator's plugin signing policy: the trusted keys read, or an error naming the file.
fn signing_policy(config: &Config) -> anyhow::Result<SigningPolicy> {
    let keys = config.trusted_plugin_keys.as_deref();
    let policy = SigningPolicy::load(keys, config.require_signed_plugins)?;
    for key in policy.keys() {
        tracing::info!(key = %key.name(), key_id = %key.id(), "trusted plugin signing key");
    }
    Ok(policy)
}

async fn serve(config: &Config, args: ServeArgs) -> anyhow::Result<()> {
    let plugins_dir = &config.plugins_dir;
    let store = open_store(config).await?;
    let key = host::keys::unlock(&store, &config.master_key_file).await?;
    host::keys::warn_if_exposed(&config.master_key_file, "master key file");
    let plugins = Arc::new(
        PluginHost::new(config.limits.clone(), Some(config.compile_cache()))?
            .allow_loopback_targets(config.allow_loopback_targets)?
            .bounded_compile_cache(),
    );
    host::plugin_registry::settings::apply_stored(&store, &plugins).await?;
    plugins.set_signing(signing_policy(config)?);
    let loaded = plugins.load_dir(plugins_dir).await;
    plugins.prune_compile_cache();
    let ok = loaded.iter().filter(|(_, r)| r.is_ok()).count();
    tracing::info!(loaded = ok, failed = loaded.len() - ok, dir = %plugins_dir.display(), "plugins");
    let preset = args.preset_admin_token()?;
    if let Some(token) = host::tokens::bootstrap_admin(&store, preset).await? {
        // Printed once, to the terminal only (not the log): only its hash is stored.
        println!("Admin token (shown once, keep it): {token}");
    }
    let state = AppState::new(store, plugins, key, plugins_dir.to_path_buf());
    // New or changed `*.wasm` files in the plugins directory are hot-swapped in.
    host::api::plugins::spawn_watcher(&state, std::time::Duration::from_secs(1));
    tokio::spawn(host::sync::run(state.clone(), config.sync_interval));
    host::replicas::spawn(&state);
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("Integration sources is running: open http://{addr}/");
    host::api::server::serve(listener, router(state), config.http, shutdown_signal()).await;
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

async fn rotate_key(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let path = &config.master_key_file;
    let count = host::keys::rotate(&store, path).await?;
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
