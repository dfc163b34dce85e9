//! The service's configuration: one optional TOML file, environment variables and command-line
//! flags, resolved with the precedence flag > environment > file > built-in default.
//!
//! The file is `--config PATH` (or `INTEGRATION_CONFIG`), else `<data-dir>/config.toml` when it
//! exists. Every key is optional; an unknown key is an error that names it. Relative paths are
//! relative to the working directory. Example (every key, with its default):
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "data"
//! plugins_dir = "target/plugins"
//! master_key_file = "data/master.key"   # INTEGRATION_MASTER_KEY, when set, wins over the file
//! sync_interval_secs = 300
//! log_format = "text"                   # or "json"
//! allow_loopback_targets = false        # let sources reach 127/8, ::1, 169.254/16, fe80::/10
//! max_connections = 512
//! header_timeout_secs = 10
//! body_timeout_secs = 60
//! database_url = "postgres://integration:secret@db.internal/integration"  # default: none (redb)
//! database_pool_size = 16
//! trusted_plugin_keys = "/etc/integration/vendor-keys"  # default: none (a file or a directory of .pub)
//! require_signed_plugins = false        # true: only plugins signed by a trusted key are admitted
//!
//! [limits]
//! memory_bytes = 67108864
//! cpu_ms = 2000
//! wall_ms = 15000
//! max_requests = 50
//! response_bytes = 4194304
//! max_concurrent_calls = 64
//! max_calls_per_plugin = 16
//! max_calls_per_source = 8
//! instances_ready = 2
//! memory_budget_bytes = 1073741824
//! max_plugin_bytes = 33554432
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::plugin::Limits;
use crate::store::DatabaseUrl;

/// Bounds on HTTP clients (applied by `api::server`).
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Connections open at once; further clients wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, idle kept-alive connections included:
    /// after it, the connection is closed.
    pub header_timeout: Duration,
    /// Time a client has to send a request's whole body, from its headers: after it, the
    /// request is answered 408 and the connection closed.
    pub body_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "INTEGRATION_CONFIG";

/// The name of the configuration file looked for in the data directory.
pub const DEFAULT_FILE_NAME: &str = "config.toml";

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The configuration options as flags and environment variables (clap fills each from its flag,
/// else its environment variable; unset ones fall back to the file, then to the default).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Settings {
    /// Configuration file (TOML). Default: `<data-dir>/config.toml` if it exists.
    #[arg(long, env = CONFIG_ENV, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Directory for the database (`integration.redb`), the master key file and caches
    /// [file: data_dir; default: data].
    #[arg(long, env = "INTEGRATION_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory of provider plugins (`*.wasm`) [file: plugins_dir; default: target/plugins].
    #[arg(
        long,
        env = "INTEGRATION_PLUGINS_DIR",
        global = true,
        value_name = "DIR"
    )]
    pub plugins_dir: Option<PathBuf>,
    /// Address to listen on [file: listen; default: 127.0.0.1:8080].
    #[arg(long, env = "INTEGRATION_LISTEN", global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Master key file (base64 of 32 bytes; created with mode 0600 if missing). The key in
    /// INTEGRATION_MASTER_KEY, when set, is used instead [file: master_key_file; default:
    /// <data-dir>/master.key].
    #[arg(
        long,
        env = "INTEGRATION_MASTER_KEY_FILE",
        global = true,
        value_name = "PATH"
    )]
    pub master_key_file: Option<PathBuf>,
    /// Seconds between sync passes over the links of enabled sources [file:
    /// sync_interval_secs; default: 300].
    #[arg(
        long,
        env = "INTEGRATION_SYNC_INTERVAL",
        global = true,
        value_name = "SECS"
    )]
    pub sync_interval: Option<u64>,
    /// Log format [file: log_format; default: text].
    #[arg(long, env = "INTEGRATION_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Let sources reach loopback and link-local addresses (this machine, a cloud metadata
    /// service) through their base URL, URL settings and proxy; private networks are
    /// reachable without it. `--allow-loopback-targets` alone means true [file: allow_loopback_targets;
    /// default: false].
    #[arg(
        long,
        env = "INTEGRATION_ALLOW_LOOPBACK_TARGETS",
        global = true,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub allow_loopback_targets: Option<bool>,
    /// HTTP connections open at once; more wait until one closes [file: max_connections;
    /// default: 512].
    #[arg(
        long,
        env = "INTEGRATION_MAX_CONNECTIONS",
        global = true,
        value_name = "N"
    )]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers (idle connections included) before
    /// the connection is closed [file: header_timeout_secs; default: 10].
    #[arg(
        long,
        env = "INTEGRATION_HEADER_TIMEOUT",
        global = true,
        value_name = "SECS"
    )]
    pub header_timeout: Option<u64>,
    /// Seconds a client has to send a request's body, after its headers, before it is
    /// answered 408 [file: body_timeout_secs; default: 60].
    #[arg(
        long,
        env = "INTEGRATION_BODY_TIMEOUT",
        global = true,
        value_name = "SECS"
    )]
    pub body_timeout: Option<u64>,
    /// Memory cap per plugin call, in bytes [file: limits.memory_bytes; default: 64 MiB].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_MEMORY_BYTES",
        global = true,
        value_name = "BYTES"
    )]
    pub plugin_memory_bytes: Option<usize>,
    /// Guest CPU time per plugin call, in milliseconds [file: limits.cpu_ms; default: 2000].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_CPU_MS",
        global = true,
        value_name = "MS"
    )]
    pub plugin_cpu_ms: Option<u64>,
    /// Wall-clock time per plugin call, HTTP included, in milliseconds [file: limits.wall_ms;
    /// default: 15000].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_WALL_MS",
        global = true,
        value_name = "MS"
    )]
    pub plugin_wall_ms: Option<u64>,
    /// HTTP requests per plugin call [file: limits.max_requests; default: 50].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_MAX_REQUESTS",
        global = true,
        value_name = "N"
    )]
    pub plugin_max_requests: Option<u32>,
    /// Largest HTTP response body a plugin may read, in bytes [file: limits.response_bytes;
    /// default: 4 MiB].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_RESPONSE_BYTES",
        global = true,
        value_name = "BYTES"
    )]
    pub plugin_response_bytes: Option<usize>,
    /// Plugin calls running at once; more wait for a slot [file: limits.max_concurrent_calls;
    /// default: 64].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_MAX_CONCURRENT_CALLS",
        global = true,
        value_name = "N"
    )]
    pub plugin_max_concurrent_calls: Option<u32>,
    /// Calls into one plugin running at once; more wait in that plugin's queue [file:
    /// limits.max_calls_per_plugin; default: 16].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_MAX_CALLS_PER_PLUGIN",
        global = true,
        value_name = "N"
    )]
    pub plugin_max_calls_per_plugin: Option<u32>,
    /// Calls on behalf of one source running at once; more wait in that source's queue
    /// [file: limits.max_calls_per_source; default: 8].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_MAX_CALLS_PER_SOURCE",
        global = true,
        value_name = "N"
    )]
    pub plugin_max_calls_per_source: Option<u32>,
    /// Instances of each loaded plugin version made ahead for its next calls (a large
    /// plugin's after its own warm-up), each still serving one call only; 0: every call
    /// instantiates on its own path [file: limits.instances_ready; default: 2; at most 8].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_INSTANCES_READY",
        global = true,
        value_name = "N"
    )]
    pub plugin_instances_ready: Option<u32>,
    /// Memory all running plugin calls may hold together, in bytes; a call growing past it
    /// is stopped [file: limits.memory_budget_bytes; default: 1 GiB].
    #[arg(
        long,
        env = "INTEGRATION_PLUGIN_MEMORY_BUDGET_BYTES",
        global = true,
        value_name = "BYTES"
    )]
    pub plugin_memory_budget_bytes: Option<usize>,
    /// Largest plugin binary accepted, in bytes, until an admin sets another limit through
    /// the API [file: limits.max_plugin_bytes; default: 32 MiB].
    #[arg(
        long,
        env = "INTEGRATION_MAX_PLUGIN_BYTES",
        global = true,
        value_name = "BYTES"
    )]
    pub max_plugin_bytes: Option<usize>,
    /// Keep the data in this PostgreSQL database (`postgres://user:password@host/db`) instead
    /// of the redb file in the data directory; several replicas may share it. The password is
    /// never logged [file: database_url; default: none, redb].
    #[arg(
        long,
        env = "INTEGRATION_DATABASE_URL",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    pub database_url: Option<DatabaseUrl>,
    /// Connections to PostgreSQL open at once, at most [file: database_pool_size; default: 16].
    #[arg(
        long,
        env = "INTEGRATION_DATABASE_POOL_SIZE",
        global = true,
        value_name = "N"
    )]
    pub database_pool_size: Option<usize>,
    /// The vendors' minisign public keys trusted to sign plugins: a file (one key per line,
    /// or `.pub` files one after another) or a directory of `.pub` files [file:
    /// trusted_plugin_keys; default: none].
    #[arg(
        long,
        env = "INTEGRATION_TRUSTED_PLUGIN_KEYS",
        global = true,
        value_name = "PATH"
    )]
    pub trusted_plugin_keys: Option<PathBuf>,
    /// Admit only plugins (uploads and files) carrying a minisign signature by a trusted key;
    /// needs --trusted-plugin-keys. `--require-signed-plugins` alone means true [file:
    /// require_signed_plugins; default: false].
    #[arg(
        long,
        env = "INTEGRATION_REQUIRE_SIGNED_PLUGINS",
        global = true,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub require_signed_plugins: Option<bool>,
}

/// The configuration file's contents; every key optional, unknown keys refused.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`Settings::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`Settings::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`Settings::plugins_dir`].
    pub plugins_dir: Option<PathBuf>,
    /// See [`Settings::master_key_file`].
    pub master_key_file: Option<PathBuf>,
    /// See [`Settings::sync_interval`].
    pub sync_interval_secs: Option<u64>,
    /// See [`Settings::log_format`].
    pub log_format: Option<LogFormat>,
    /// See [`Settings::allow_loopback_targets`].
    pub allow_loopback_targets: Option<bool>,
    /// See [`Settings::max_connections`].
    pub max_connections: Option<usize>,
    /// See [`Settings::header_timeout`].
    pub header_timeout_secs: Option<u64>,
    /// See [`Settings::body_timeout`].
    pub body_timeout_secs: Option<u64>,
    /// See [`Settings::database_url`].
    pub database_url: Option<DatabaseUrl>,
    /// See [`Settings::database_pool_size`].
    pub database_pool_size: Option<usize>,
    /// See [`Settings::trusted_plugin_keys`].
    pub trusted_plugin_keys: Option<PathBuf>,
    /// See [`Settings::require_signed_plugins`].
    pub require_signed_plugins: Option<bool>,
    /// Plugin sandbox limits.
    #[serde(default)]
    pub limits: FileLimits,
}

/// The `[limits]` table of the configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    /// See [`Settings::plugin_memory_bytes`].
    pub memory_bytes: Option<usize>,
    /// See [`Settings::plugin_cpu_ms`].
    pub cpu_ms: Option<u64>,
    /// See [`Settings::plugin_wall_ms`].
    pub wall_ms: Option<u64>,
    /// See [`Settings::plugin_max_requests`].
    pub max_requests: Option<u32>,
    /// See [`Settings::plugin_response_bytes`].
    pub response_bytes: Option<usize>,
    /// See [`Settings::plugin_max_concurrent_calls`].
    pub max_concurrent_calls: Option<u32>,
    /// See [`Settings::plugin_max_calls_per_plugin`].
    pub max_calls_per_plugin: Option<u32>,
    /// See [`Settings::plugin_max_calls_per_source`].
    pub max_calls_per_source: Option<u32>,
    /// See [`Settings::plugin_instances_ready`].
    pub instances_ready: Option<u32>,
    /// See [`Settings::plugin_memory_budget_bytes`].
    pub memory_budget_bytes: Option<usize>,
    /// See [`Settings::max_plugin_bytes`].
    pub max_plugin_bytes: Option<usize>,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Plugins directory.
    pub plugins_dir: PathBuf,
    /// Master key file (used when `INTEGRATION_MASTER_KEY` is not set).
    pub master_key_file: PathBuf,
    /// Time between sync passes (at least one second).
    pub sync_interval: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Whether sources may reach loopback and link-local addresses.
    pub allow_loopback_targets: bool,
    /// Plugin sandbox limits.
    pub limits: Limits,
    /// Bounds on HTTP clients.
    pub http: HttpLimits,
    /// The PostgreSQL database, if the data is kept there (else the redb file).
    pub database_url: Option<DatabaseUrl>,
    /// Connections to PostgreSQL open at once, at most.
    pub database_pool_size: usize,
    /// The file or directory of trusted plugin signing keys, if any.
    pub trusted_plugin_keys: Option<PathBuf>,
    /// Whether every plugin must be signed by a trusted key.
    pub require_signed_plugins: bool,
}

impl Config {
    /// The database file in the data directory.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("integration.redb")
    }

    /// The compiled-plugin cache in the data directory.
    pub fn compile_cache(&self) -> PathBuf {
        self.data_dir.join("compile-cache")
    }
}

/// Reads and parses a configuration file; errors name the file and the offending key.
pub fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    parse_file(&text).with_context(|| format!("configuration file {}", path.display()))
}

/// Parses configuration file text (an unknown key is an error naming it).
pub fn parse_file(text: &str) -> anyhow::Result<FileConfig> {
    let de = toml::Deserializer::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().to_string();
        if path == "." {
            anyhow::anyhow!("{message}")
        } else {
            anyhow::anyhow!("key {path}: {message}")
        }
    })
}

/// Resolves the configuration: each option from its flag or environment variable (already in
/// `settings`), else the configuration file, else the default.
pub fn resolve(settings: &Settings) -> anyhow::Result<Config> {
    let default_data_dir = PathBuf::from("data");
    let file_path = match &settings.config {
        Some(path) => Some(path.clone()),
        None => {
            let candidate = settings
                .data_dir
                .as_ref()
                .unwrap_or(&default_data_dir)
                .join(DEFAULT_FILE_NAME);
            candidate.is_file().then_some(candidate)
        }
    };
    let file = match &file_path {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let http = http_limits(settings, &file)?;
    let data_dir = settings
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or(default_data_dir);
    let master_key_file = settings
        .master_key_file
        .clone()
        .or(file.master_key_file)
        .unwrap_or_else(|| data_dir.join("master.key"));
    let defaults = Limits::default();
    let fl = file.limits;
    let limits = Limits {
        memory_bytes: settings
            .plugin_memory_bytes
            .or(fl.memory_bytes)
            .unwrap_or(defaults.memory_bytes),
        cpu_time: settings
            .plugin_cpu_ms
            .or(fl.cpu_ms)
            .map_or(defaults.cpu_time, Duration::from_millis),
        wall_time: settings
            .plugin_wall_ms
            .or(fl.wall_ms)
            .map_or(defaults.wall_time, Duration::from_millis),
        max_requests: settings
            .plugin_max_requests
            .or(fl.max_requests)
            .unwrap_or(defaults.max_requests),
        max_response_bytes: settings
            .plugin_response_bytes
            .or(fl.response_bytes)
            .unwrap_or(defaults.max_response_bytes),
        max_concurrent_calls: settings
            .plugin_max_concurrent_calls
            .or(fl.max_concurrent_calls)
            .unwrap_or(defaults.max_concurrent_calls),
        max_calls_per_plugin: settings
            .plugin_max_calls_per_plugin
            .or(fl.max_calls_per_plugin)
            .unwrap_or(defaults.max_calls_per_plugin),
        max_calls_per_source: settings
            .plugin_max_calls_per_source
            .or(fl.max_calls_per_source)
            .unwrap_or(defaults.max_calls_per_source),
        instances_ready: settings
            .plugin_instances_ready
            .or(fl.instances_ready)
            .unwrap_or(defaults.instances_ready),
        memory_budget_bytes: settings
            .plugin_memory_budget_bytes
            .or(fl.memory_budget_bytes)
            .unwrap_or(defaults.memory_budget_bytes),
        max_plugin_bytes: settings
            .max_plugin_bytes
            .or(fl.max_plugin_bytes)
            .unwrap_or(defaults.max_plugin_bytes),
    };
    check_limits(&limits)?;
    let trusted_plugin_keys = settings
        .trusted_plugin_keys
        .clone()
        .or(file.trusted_plugin_keys);
    let require_signed_plugins = settings
        .require_signed_plugins
        .or(file.require_signed_plugins)
        .unwrap_or(false);
    Ok(Config {
        trusted_plugin_keys,
        require_signed_plugins,
        file: file_path,
        listen: settings
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        plugins_dir: settings
            .plugins_dir
            .clone()
            .or(file.plugins_dir)
            .unwrap_or_else(|| PathBuf::from("target/plugins")),
        master_key_file,
        sync_interval: Duration::from_secs(
            settings
                .sync_interval
                .or(file.sync_interval_secs)
                .unwrap_or(300)
                .max(1),
        ),
        log_format: settings.log_format.or(file.log_format).unwrap_or_default(),
        allow_loopback_targets: settings
            .allow_loopback_targets
            .or(file.allow_loopback_targets)
            .unwrap_or(false),
        limits,
        http,
        data_dir,
        database_url: match settings.database_url.clone().or(file.database_url) {
            Some(url) => Some(url.check().map(|()| url).map_err(anyhow::Error::msg)?),
            None => None,
        },
        database_pool_size: match settings.database_pool_size.or(file.database_pool_size) {
            Some(0) => anyhow::bail!("database_pool_size must be at least 1"),
            Some(n) => n,
            None => 16,
        },
    })
}

/// The HTTP bounds: each from its flag or environment variable, else the file, else the default.
fn http_limits(settings: &Settings, file: &FileConfig) -> anyhow::Result<HttpLimits> {
    let defaults = HttpLimits::default();
    let secs =
        |flag: Option<u64>, key: Option<u64>, default: Duration, name: &str| match flag.or(key) {
            Some(0) => anyhow::bail!("{name} must be at least 1 second"),
            Some(n) => Ok(Duration::from_secs(n)),
            None => Ok(default),
        };
    let max_connections = settings
        .max_connections
        .or(file.max_connections)
        .unwrap_or(defaults.max_connections);
    if max_connections == 0 {
        anyhow::bail!("max_connections must be at least 1");
    }
    Ok(HttpLimits {
        max_connections,
        header_timeout: secs(
            settings.header_timeout,
            file.header_timeout_secs,
            defaults.header_timeout,
            "header_timeout_secs",
        )?,
        body_timeout: secs(
            settings.body_timeout,
            file.body_timeout_secs,
            defaults.body_timeout,
            "body_timeout_secs",
        )?,
    })
}

/// Refuses limits under which no call could run, naming the option.
fn check_limits(limits: &Limits) -> anyhow::Result<()> {
    for (name, value) in [
        ("max_concurrent_calls", limits.max_concurrent_calls),
        ("max_calls_per_plugin", limits.max_calls_per_plugin),
        ("max_calls_per_source", limits.max_calls_per_source),
    ] {
        if value == 0 {
            anyhow::bail!("the plugin limit {name} must be at least 1");
        }
    }
    if limits.instances_ready > crate::plugin::MAX_INSTANCES_READY {
        anyhow::bail!(
            "the plugin limit instances_ready ({}) must be at most {}",
            limits.instances_ready,
            crate::plugin::MAX_INSTANCES_READY
        );
    }
    if limits.memory_budget_bytes < limits.memory_bytes {
        anyhow::bail!(
            "the plugin limit memory_budget_bytes ({}) must be at least one call's memory_bytes \
             ({})",
            limits.memory_budget_bytes,
            limits.memory_bytes
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = resolve(&Settings {
            data_dir: Some(dir.path().to_path_buf()),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(config.file, None);
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.plugins_dir, PathBuf::from("target/plugins"));
        assert_eq!(config.master_key_file, dir.path().join("master.key"));
        assert_eq!(config.sync_interval, Duration::from_secs(300));
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.limits.memory_bytes, Limits::default().memory_bytes);
    }

    #[test]
    fn the_file_takes_effect_and_a_flag_overrides_it() {
        let dir = tempfile::tempdir().unwrap();
        // Found in the data directory without --config.
        std::fs::write(
            dir.path().join(DEFAULT_FILE_NAME),
            r#"
listen = "0.0.0.0:9999"
plugins_dir = "/opt/plugins"
master_key_file = "/etc/key"
sync_interval_secs = 42
log_format = "json"

[limits]
memory_bytes = 1000000
cpu_ms = 250
wall_ms = 3000
max_requests = 7
response_bytes = 2048
max_concurrent_calls = 3
max_calls_per_plugin = 2
max_calls_per_source = 1
instances_ready = 0
memory_budget_bytes = 5000000
max_plugin_bytes = 99
"#,
        )
        .unwrap();
        let from_file = resolve(&Settings {
            data_dir: Some(dir.path().to_path_buf()),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(from_file.file, Some(dir.path().join(DEFAULT_FILE_NAME)));
        assert_eq!(from_file.listen, "0.0.0.0:9999".parse().unwrap());
        assert_eq!(from_file.plugins_dir, PathBuf::from("/opt/plugins"));
        assert_eq!(from_file.master_key_file, PathBuf::from("/etc/key"));
        assert_eq!(from_file.sync_interval, Duration::from_secs(42));
        assert_eq!(from_file.log_format, LogFormat::Json);
        let l = &from_file.limits;
        assert_eq!(l.memory_bytes, 1_000_000);
        assert_eq!(l.cpu_time, Duration::from_millis(250));
        assert_eq!(l.wall_time, Duration::from_millis(3000));
        assert_eq!(l.max_requests, 7);
        assert_eq!(l.max_response_bytes, 2048);
        assert_eq!(l.max_concurrent_calls, 3);
        assert_eq!(l.max_calls_per_plugin, 2);
        assert_eq!(l.max_calls_per_source, 1);
        assert_eq!(l.instances_ready, 0);
        assert_eq!(l.memory_budget_bytes, 5_000_000);
        assert_eq!(l.max_plugin_bytes, 99);

        // Flags (or their environment variables, which clap puts in the same place) win.
        let flagged = resolve(&Settings {
            data_dir: Some(dir.path().to_path_buf()),
            sync_interval: Some(5),
            log_format: Some(LogFormat::Text),
            plugin_cpu_ms: Some(100),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(flagged.sync_interval, Duration::from_secs(5));
        assert_eq!(flagged.log_format, LogFormat::Text);
        assert_eq!(flagged.limits.cpu_time, Duration::from_millis(100));
        assert_eq!(flagged.listen, "0.0.0.0:9999".parse().unwrap());
    }

    #[test]
    fn flags_parse_and_win_over_an_explicit_file() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custom.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\n[limits]\nwall_ms = 10\n").unwrap();
        let cli = <Cli as clap::Parser>::try_parse_from([
            "integration-host",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:2",
        ])
        .unwrap();
        let config = resolve(&cli.settings).unwrap();
        assert_eq!(config.listen, "127.0.0.1:2".parse().unwrap());
        assert_eq!(config.limits.wall_time, Duration::from_millis(10));
    }

    #[test]
    fn loopback_targets_are_off_unless_the_operator_turns_them_on() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let dir = tempfile::tempdir().unwrap();
        let resolved = |args: &[&str]| {
            let mut argv = vec![
                "integration-host",
                "--data-dir",
                dir.path().to_str().unwrap(),
            ];
            argv.extend_from_slice(args);
            let cli = <Cli as clap::Parser>::try_parse_from(argv).unwrap();
            resolve(&cli.settings).unwrap().allow_loopback_targets
        };
        assert!(!resolved(&[]));
        assert!(resolved(&["--allow-loopback-targets"]));
        std::fs::write(
            dir.path().join(DEFAULT_FILE_NAME),
            "allow_loopback_targets = true\n",
        )
        .unwrap();
        assert!(resolved(&[]));
        assert!(!resolved(&["--allow-loopback-targets=false"]));
    }

    #[test]
    fn signed_plugins_are_off_unless_the_operator_turns_them_on_by_flag_or_file() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let dir = tempfile::tempdir().unwrap();
        let resolved = |args: &[&str]| {
            let mut argv = vec![
                "integration-host",
                "--data-dir",
                dir.path().to_str().unwrap(),
            ];
            argv.extend_from_slice(args);
            let cli = <Cli as clap::Parser>::try_parse_from(argv).unwrap();
            let config = resolve(&cli.settings).unwrap();
            (config.require_signed_plugins, config.trusted_plugin_keys)
        };
        assert_eq!(resolved(&[]), (false, None));
        let flags = ["--require-signed-plugins", "--trusted-plugin-keys", "/k"];
        assert_eq!(resolved(&flags), (true, Some(PathBuf::from("/k"))));
        std::fs::write(
            dir.path().join(DEFAULT_FILE_NAME),
            "require_signed_plugins = true\ntrusted_plugin_keys = \"/etc/keys\"\n",
        )
        .unwrap();
        assert_eq!(resolved(&[]), (true, Some(PathBuf::from("/etc/keys"))));
        let off = [
            "--require-signed-plugins=false",
            "--trusted-plugin-keys",
            "/k",
        ];
        assert_eq!(resolved(&off), (false, Some(PathBuf::from("/k"))));
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = parse_file("listen = \"127.0.0.1:1\"\nsync_intervall = 3\n").unwrap_err();
        assert!(err.to_string().contains("sync_intervall"), "{err}");
        let err = parse_file("[limits]\ncpu_msec = 3\n").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("cpu_msec"), "{text}");
        assert!(text.contains("limits"), "{text}");
        let err = parse_file("log_format = \"xml\"\n").unwrap_err();
        assert!(err.to_string().contains("log_format"), "{err}");
    }

    #[test]
    fn limits_under_which_no_call_can_run_are_refused_naming_the_option() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |settings: Settings| {
            resolve(&Settings {
                data_dir: Some(dir.path().to_path_buf()),
                ..settings
            })
            .unwrap_err()
            .to_string()
        };
        let err = refused(Settings {
            plugin_max_calls_per_source: Some(0),
            ..Settings::default()
        });
        assert!(err.contains("max_calls_per_source"), "{err}");
        let err = refused(Settings {
            plugin_instances_ready: Some(9),
            ..Settings::default()
        });
        assert!(
            err.contains("instances_ready (9) must be at most 8"),
            "{err}"
        );
        let err = refused(Settings {
            plugin_memory_budget_bytes: Some(1 << 20),
            ..Settings::default()
        });
        assert!(err.contains("memory_budget_bytes"), "{err}");
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let err = resolve(&Settings {
            config: Some(PathBuf::from("/nonexistent/config.toml")),
            ..Settings::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/config.toml"),
            "{err}"
        );
    }

    #[test]
    fn http_limits_come_from_the_file_or_flags_and_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let settings = |extra: Settings| Settings {
            data_dir: Some(dir.path().to_path_buf()),
            ..extra
        };
        assert_eq!(
            resolve(&settings(Settings::default()))
                .unwrap()
                .http
                .max_connections,
            HttpLimits::default().max_connections
        );
        std::fs::write(
            dir.path().join(DEFAULT_FILE_NAME),
            "max_connections = 7\nheader_timeout_secs = 3\nbody_timeout_secs = 4\n",
        )
        .unwrap();
        let http = resolve(&settings(Settings::default())).unwrap().http;
        assert_eq!(http.max_connections, 7);
        assert_eq!(http.header_timeout, Duration::from_secs(3));
        assert_eq!(http.body_timeout, Duration::from_secs(4));
        let flagged = settings(Settings {
            header_timeout: Some(9),
            ..Settings::default()
        });
        assert_eq!(
            resolve(&flagged).unwrap().http.header_timeout,
            Duration::from_secs(9)
        );
        let zero = settings(Settings {
            body_timeout: Some(0),
            ..Settings::default()
        });
        let err = resolve(&zero).unwrap_err().to_string();
        assert!(err.contains("body_timeout_secs"), "{err}");
    }

    #[test]
    fn the_database_url_comes_from_the_file_or_a_flag_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let none = resolve(&Settings {
            data_dir: Some(dir.path().to_path_buf()),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(none.database_url, None, "redb by default");
        assert_eq!(none.database_pool_size, 16);
        std::fs::write(
            dir.path().join(DEFAULT_FILE_NAME),
            "database_url = \"postgres://u:file-pw@db/one\"\ndatabase_pool_size = 4\n",
        )
        .unwrap();
        let settings = Settings {
            data_dir: Some(dir.path().to_path_buf()),
            ..Settings::default()
        };
        let from_file = resolve(&settings).unwrap();
        let url = from_file.database_url.unwrap();
        assert_eq!(url.expose(), "postgres://u:file-pw@db/one");
        assert_eq!(from_file.database_pool_size, 4);
        let flagged = resolve(&Settings {
            database_url: Some("postgres://u@db/two".parse().unwrap()),
            ..settings
        })
        .unwrap();
        assert_eq!(
            flagged.database_url.unwrap().expose(),
            "postgres://u@db/two"
        );
        let err = parse_file("database_url = \"mysql://u:pw@db/x\"").unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("database_url") && text.contains("postgres://"),
            "{text}"
        );
        assert!(!text.contains(":pw@"), "{text}");
        // On the command line too (the parser would echo a value it refused).
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let args = ["x", "--database-url", "mysql://u:pw@db/x"];
        let cli = <Cli as clap::Parser>::try_parse_from(args).unwrap();
        let err = resolve(&cli.settings).unwrap_err().to_string();
        assert!(
            err.contains("postgres://") && !err.contains(":pw@"),
            "{err}"
        );
    }
}
