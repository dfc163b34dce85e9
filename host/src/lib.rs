//! The integration-sources host: stores sources and links, serves the HTTP API and the admin
//! page, and runs provider plugins in a sandbox. See ARCHITECTURE.md for the codemap.

pub mod api;
pub mod app;
pub mod audit;
pub mod comments;
pub mod compat;
pub mod config;
pub mod crypto;
pub mod dev;
pub mod field;
pub mod health_store;
pub mod ids;
pub mod keys;
pub mod link_sources;
pub mod links;
pub mod metrics;
pub mod names;
pub mod objects;
pub mod paging;
pub mod plugin;
pub mod plugin_registry;
pub mod projects;
pub mod replicas;
pub mod scaffold;
pub mod sources;
pub mod sources_as_code;
pub mod store;
pub mod sync;
pub mod tokens;
pub mod webhooks;

#[cfg(test)]
mod layering;
