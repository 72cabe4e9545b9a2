//! tokentally: receives Claude Code's OpenTelemetry (OTLP logs, metrics and
//! traces) into an embedded SQLite store and answers usage questions through
//! least-privilege MCP tools.
//!
//! Data flows one way, and the modules follow it:
//!
//! * [`otlp`]: bytes → OTLP messages → typed [`rows`] (decoding only: content
//!   types, compression, size caps; no HTTP, no SQL).
//! * [`store`]: schema, the single batched writer, read connections with time budgets.
//! * [`query`]: one module per question, SQL with bound parameters only.
//! * [`mcp`]: the MCP tools, calling [`query`]; the CLI calls the same tools.
//! * [`http`], [`grpc`]: thin transports (OTLP/HTTP, `/mcp`, OTLP/gRPC).
//! * [`auth`], [`audit`], [`ratelimit`]: tokens and scopes, the tamper-evident
//!   audit log, rate limits.
//! * [`content`]: what counts as user content, for ingest, reads and audit.
//! * [`server`]: wires everything together under one cancellation token.

pub mod agent;
pub mod audit;
pub mod auth;
pub mod clickhouse;
pub mod config;
#[cfg(test)]
mod conformance;
pub mod content;
pub mod datadir;
pub mod demo;
pub mod doctor;
pub mod duration;
pub mod format;
pub mod grpc;
pub mod http;
pub mod import;
pub mod mcp;
pub mod metrics;
pub mod otlp;
pub mod pricing;
pub mod query;
pub mod ratelimit;
pub mod report;
pub mod rows;
pub mod server;
pub mod setup;
pub mod store;
pub mod tabular;
pub mod web;
