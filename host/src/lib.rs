//! The integration-sources host: stores sources and links, serves the HTTP API and the admin
//! page, and runs provider plugins in a sandbox. See ARCHITECTURE.md for the codemap.

pub mod api;
pub mod app;
pub mod compat;
pub mod config;
pub mod crypto;
pub mod keys;
pub mod links;
pub mod metrics;
pub mod page;
pub mod plugin;
pub mod sources_as_code;
pub mod store;
pub mod sync;
