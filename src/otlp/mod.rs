//! OTLP decoding: request bodies → OTLP messages → typed [`rows`].
//!
//! Pure functions, no transport and no SQL. The HTTP transport calls
//! [`decode`] with the body and its headers and maps [`DecodeError`] to a
//! status code (415, 413, 400); the gRPC transport already holds prost
//! messages and calls [`logs_to_batch`], [`metrics_to_batch`] or
//! [`traces_to_batch`].
//!
//! * `body`: content types, decompression, the size cap (applied to the
//!   decompressed size, streaming so a bomb never allocates past it).
//! * `json`: OTLP/JSON → prost messages (our own mapping, not the crate's
//!   serde feature), one file per signal.
//! * `convert`: prost messages → [`rows::Batch`]: Claude
//!   Code recognition, shared contexts, typed columns, content redaction,
//!   deduplication keys.
//!
//! With content capture off (the default) the rows keep no prompt text
//! (`prompt`, `prompt_text`, span `user_prompt`), no `response`/`content`,
//! no API request/response `body`, no `system_prompt`, no tool schema
//! (`tool`), and of `tool_input` only its metadata keys (paths, patterns,
//! URLs, commands, descriptions, offsets); lengths and sizes are kept and
//! `content_redacted` marks the rows that lost something.

mod body;
mod convert;
mod json;
mod response;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::rows;

pub use body::{decompress, parse_content_type};
pub use convert::{logs_to_batch, metrics_to_batch, traces_to_batch};
pub use response::{logs_response, metrics_response, traces_response};

/// The three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Log records (Claude Code events).
    Logs,
    /// Metric data points.
    Metrics,
    /// Spans.
    Traces,
}

impl Signal {
    /// The signal's name: `logs`, `metrics` or `traces`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }

    /// The OTLP/HTTP path of the signal.
    pub fn path(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
            Signal::Traces => "/v1/traces",
        }
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Binary protobuf (`application/x-protobuf`).
    Protobuf,
    /// OTLP/JSON (`application/json`).
    Json,
}

/// Why a request could not be decoded at all. Records refused one by one are
/// not errors: they are counted in [`Decoded::rejected`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The content type is missing or not an OTLP one (HTTP 415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The content encoding is not one we can decompress (HTTP 415).
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// The body exceeds the cap once decompressed (HTTP 413).
    #[error("request body larger than {limit} bytes after decompression")]
    TooLarge {
        /// The cap that was exceeded, in bytes.
        limit: usize,
    },
    /// The body is not a valid OTLP message (HTTP 400); says what is wrong.
    #[error("{0}")]
    Malformed(String),
}

/// Decoding settings, taken from the server configuration.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Largest body accepted after decompression, in bytes.
    pub max_body_bytes: usize,
    /// Keep prompt text, responses, API bodies and tool input contents.
    pub capture_content: bool,
    /// Prices for the computed cost of API requests.
    pub pricing: std::sync::Arc<crate::pricing::Pricing>,
    /// The operator's identity map for agents that send no user.
    pub identity: std::sync::Arc<crate::config::IdentityMap>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_body_bytes: 16 * 1024 * 1024,
            capture_content: false,
            pricing: Default::default(),
            identity: Default::default(),
        }
    }
}

impl DecodeOptions {
    /// The options of `config`, its price override file read.
    pub fn from_config(
        config: &crate::config::Config,
    ) -> Result<DecodeOptions, crate::pricing::PricingError> {
        let pricing = crate::pricing::Pricing::load(config.pricing.file.as_deref())?;
        Ok(DecodeOptions {
            max_body_bytes: config.max_body_bytes,
            capture_content: config.capture_content,
            pricing: std::sync::Arc::new(pricing),
            identity: std::sync::Arc::new(config.identity.clone()),
        })
    }
}

/// The rows of one request, plus what was refused.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// The accepted records, grouped by context.
    pub batch: rows::Batch,
    /// Records refused individually (OTLP `partial_success.rejected_*`).
    pub rejected: u64,
    /// Why records were refused (OTLP `partial_success.error_message`).
    pub message: Option<String>,
}

/// An OTLP export request of one signal: how to read it from JSON and how to
/// turn it into rows. Lets [`decode`] serve all three signals with one path.
trait ExportRequest: prost::Message + Default + Sized {
    fn from_json(bytes: &[u8]) -> Result<Self, DecodeError>;
    fn to_batch(&self, opts: &DecodeOptions) -> Decoded;
}

impl ExportRequest for ExportLogsServiceRequest {
    fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        json::parse(bytes, json::logs_request)
    }
    fn to_batch(&self, opts: &DecodeOptions) -> Decoded {
        logs_to_batch(self, opts)
    }
}

impl ExportRequest for ExportMetricsServiceRequest {
    fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        json::parse(bytes, json::metrics_request)
    }
    fn to_batch(&self, opts: &DecodeOptions) -> Decoded {
        metrics_to_batch(self, opts)
    }
}

impl ExportRequest for ExportTraceServiceRequest {
    fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        json::parse(bytes, json::traces_request)
    }
    fn to_batch(&self, opts: &DecodeOptions) -> Decoded {
        traces_to_batch(self, opts)
    }
}

fn decode_request<T: ExportRequest>(bytes: &[u8], enc: Encoding) -> Result<T, DecodeError> {
    match enc {
        Encoding::Protobuf => T::decode(bytes)
            .map_err(|e| DecodeError::Malformed(format!("invalid OTLP protobuf: {e}"))),
        Encoding::Json => T::from_json(bytes),
    }
}

/// Decodes an (already decompressed) logs request body.
pub fn decode_logs(bytes: &[u8], enc: Encoding) -> Result<ExportLogsServiceRequest, DecodeError> {
    decode_request(bytes, enc)
}

/// Decodes an (already decompressed) metrics request body.
pub fn decode_metrics(
    bytes: &[u8],
    enc: Encoding,
) -> Result<ExportMetricsServiceRequest, DecodeError> {
    decode_request(bytes, enc)
}

/// Decodes an (already decompressed) traces request body.
pub fn decode_traces(
    bytes: &[u8],
    enc: Encoding,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    decode_request(bytes, enc)
}

fn decode_to_batch<T: ExportRequest>(
    bytes: &[u8],
    enc: Encoding,
    opts: &DecodeOptions,
) -> Result<Decoded, DecodeError> {
    Ok(decode_request::<T>(bytes, enc)?.to_batch(opts))
}

/// The whole path for an OTLP/HTTP body: content type, decompression under
/// the size cap, decoding, conversion to rows.
pub fn decode(
    signal: Signal,
    body: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    opts: &DecodeOptions,
) -> Result<Decoded, DecodeError> {
    let enc = parse_content_type(content_type)?;
    let bytes = body::decompress_cow(body, content_encoding, opts.max_body_bytes)?;
    match signal {
        Signal::Logs => decode_to_batch::<ExportLogsServiceRequest>(&bytes, enc, opts),
        Signal::Metrics => decode_to_batch::<ExportMetricsServiceRequest>(&bytes, enc, opts),
        Signal::Traces => decode_to_batch::<ExportTraceServiceRequest>(&bytes, enc, opts),
    }
}

#[cfg(test)]
mod tests;
