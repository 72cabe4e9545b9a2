//! OTLP/HTTP receiver: `POST /v1/logs`, `/v1/metrics`, `/v1/traces`.
//!
//! Thin on purpose: read the body under a cap, hand it to [`crate::otlp`] on a
//! blocking thread, write the rows through [`crate::store::Store`], and answer
//! as the OTLP/HTTP specification says: the export response (with
//! `partial_success` only when records were refused) in the request's
//! encoding, a `google.rpc.Status` body for errors, 503 + `Retry-After` when
//! the store cannot keep up.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;

use crate::otlp::{self, DecodeError, DecodeOptions, Encoding, Signal};
use crate::store::{Sink, StoreError};

/// What the OTLP/HTTP handlers need.
#[derive(Clone)]
pub struct OtlpState {
    /// Where rows go.
    pub sink: std::sync::Arc<dyn Sink>,
    /// Decoding limits and content capture.
    pub decode: DecodeOptions,
}

/// `google.rpc.Status`, the OTLP/HTTP error body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// gRPC status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// Seconds an exporter should wait before retrying when the store is busy.
const RETRY_AFTER_SECS: u64 = 2;

/// `POST /v1/logs`
pub async fn export_logs(State(state): State<OtlpState>, req: Request) -> Response {
    export(state, Signal::Logs, req).await
}

/// `POST /v1/metrics`
pub async fn export_metrics(State(state): State<OtlpState>, req: Request) -> Response {
    export(state, Signal::Metrics, req).await
}

/// `POST /v1/traces`
pub async fn export_traces(State(state): State<OtlpState>, req: Request) -> Response {
    export(state, Signal::Traces, req).await
}

/// The one path all three signals take.
async fn export(state: OtlpState, signal: Signal, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let content_type = header_str(&parts.headers, header::CONTENT_TYPE);
    let content_encoding = header_str(&parts.headers, header::CONTENT_ENCODING);
    // Answer in the request's encoding; an unknown content type gets protobuf
    // unless it looks like JSON.
    let reply_encoding = match otlp::parse_content_type(content_type.as_deref()) {
        Ok(enc) => enc,
        Err(e) => {
            let enc = if content_type.as_deref().is_some_and(|c| c.contains("json")) {
                Encoding::Json
            } else {
                Encoding::Protobuf
            };
            return decode_error_response(e, enc);
        }
    };

    // Cap before decompressing: a compressed body is never larger than the
    // decompressed cap allows (plus framing slack); the decoder caps again
    // while decompressing.
    let wire_limit = state.decode.max_body_bytes.saturating_add(64 * 1024);
    let bytes = match axum::body::to_bytes(body, wire_limit).await {
        Ok(b) => b,
        Err(e) => {
            return if is_length_limit(&e) {
                decode_error_response(
                    DecodeError::TooLarge {
                        limit: state.decode.max_body_bytes,
                    },
                    reply_encoding,
                )
            } else {
                status_response(
                    StatusCode::BAD_REQUEST,
                    3,
                    format!("could not read the request body: {e}"),
                    reply_encoding,
                )
            };
        }
    };

    let opts = state.decode.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        otlp::decode(
            signal,
            &bytes,
            content_type.as_deref(),
            content_encoding.as_deref(),
            &opts,
        )
    })
    .await;
    let decoded = match decoded {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return decode_error_response(e, reply_encoding),
        Err(e) => {
            tracing::error!(error = %e, "decoder task failed");
            return status_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                13,
                "internal error while decoding".into(),
                reply_encoding,
            );
        }
    };

    let rejected = decoded.rejected;
    let message = decoded.message;
    let receipt = if decoded.batch.is_empty() {
        crate::store::WriteReceipt::default()
    } else {
        match state.sink.write(decoded.batch).await {
            Ok(r) => r,
            Err(e) => return store_error_response(e, reply_encoding),
        }
    };
    crate::metrics::ingested(
        signal.name(),
        receipt.inserted,
        receipt.duplicates,
        rejected,
    );
    success_response(signal, reply_encoding, rejected, message)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Maps a decoding error to its OTLP/HTTP status.
pub fn decode_error_response(e: DecodeError, enc: Encoding) -> Response {
    let (status, code) = match &e {
        DecodeError::UnsupportedMediaType(_) | DecodeError::UnsupportedEncoding(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, 3)
        }
        DecodeError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, 8),
        DecodeError::Malformed(_) => (StatusCode::BAD_REQUEST, 3),
    };
    status_response(status, code, e.to_string(), enc)
}

/// Maps a store error: everything transient is 503 + Retry-After so exporters retry.
fn store_error_response(e: StoreError, enc: Encoding) -> Response {
    match e {
        StoreError::Overloaded | StoreError::Unavailable(_) | StoreError::Closed => {
            tracing::warn!(error = %e, "ingest refused, store unavailable");
            let mut resp = status_response(
                StatusCode::SERVICE_UNAVAILABLE,
                14,
                format!("store unavailable, retry later: {e}"),
                enc,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            resp
        }
        other => {
            tracing::error!(error = %other, "ingest failed");
            status_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                13,
                "internal error while storing".into(),
                enc,
            )
        }
    }
}

/// A `google.rpc.Status` body in the given encoding.
pub fn status_response(status: StatusCode, code: i32, message: String, enc: Encoding) -> Response {
    match enc {
        Encoding::Json => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "code": code, "message": message }).to_string(),
        )
            .into_response(),
        Encoding::Protobuf => (
            status,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            RpcStatus { code, message }.encode_to_vec(),
        )
            .into_response(),
    }
}

/// The export response: empty on full success, `partial_success` otherwise.
fn success_response(
    signal: Signal,
    enc: Encoding,
    rejected: u64,
    message: Option<String>,
) -> Response {
    match enc {
        Encoding::Json => {
            let field = match signal {
                Signal::Logs => "rejectedLogRecords",
                Signal::Metrics => "rejectedDataPoints",
                Signal::Traces => "rejectedSpans",
            };
            let value = if rejected > 0 || message.is_some() {
                serde_json::json!({ "partialSuccess": {
                    field: rejected.to_string(),
                    "errorMessage": message.unwrap_or_default(),
                } })
            } else {
                serde_json::json!({})
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                value.to_string(),
            )
                .into_response()
        }
        Encoding::Protobuf => {
            let body = match signal {
                Signal::Logs => otlp::logs_response(rejected, message).encode_to_vec(),
                Signal::Metrics => otlp::metrics_response(rejected, message).encode_to_vec(),
                Signal::Traces => otlp::traces_response(rejected, message).encode_to_vec(),
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                body,
            )
                .into_response()
        }
    }
}
