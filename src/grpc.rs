//! OTLP/gRPC receiver: the standard `LogsService`, `MetricsService` and
//! `TraceService`, calling the same decoding and store path as OTLP/HTTP.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::auth::{IngestDenial, TokenStore, check_ingest_token};
use crate::otlp::{self, DecodeOptions, Decoded};
use crate::store::{Sink, StoreError};

/// The three OTLP services over one store.
#[derive(Clone)]
pub struct OtlpGrpc {
    sink: std::sync::Arc<dyn Sink>,
    decode: DecodeOptions,
}

impl OtlpGrpc {
    /// Builds the services.
    pub fn new(sink: std::sync::Arc<dyn Sink>, decode: DecodeOptions) -> Self {
        OtlpGrpc { sink, decode }
    }

    /// Converts on a blocking thread and writes; the partial-success count and message.
    async fn ingest<R: Send + 'static>(
        &self,
        signal: crate::otlp::Signal,
        req: R,
        convert: fn(&R, &DecodeOptions) -> Decoded,
    ) -> Result<(u64, Option<String>), Status> {
        let opts = self.decode.clone();
        let decoded = tokio::task::spawn_blocking(move || convert(&req, &opts))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "decoder task failed");
                Status::internal("internal error while decoding")
            })?;
        let receipt = if decoded.batch.is_empty() {
            crate::store::WriteReceipt::default()
        } else {
            self.sink.write(decoded.batch).await.map_err(store_status)?
        };
        crate::metrics::ingested(
            signal.name(),
            receipt.inserted,
            receipt.duplicates,
            decoded.rejected,
        );
        Ok((decoded.rejected, decoded.message))
    }

    /// A tonic router serving all three services, with gzip/zstd accepted and
    /// messages capped at `max_body_bytes` after decompression.
    pub fn router(self, tokens: Option<TokenStore>) -> tonic::service::Routes {
        let max = self.decode.max_body_bytes;
        let auth = IngestInterceptor { tokens };
        let logs = LogsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size(max);
        let metrics = MetricsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size(max);
        let traces = TraceServiceServer::new(self)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size(max);
        tonic::service::Routes::new(tonic::service::interceptor::InterceptedService::new(
            logs,
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            metrics,
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            traces, auth,
        ))
    }
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Overloaded | StoreError::Unavailable(_) | StoreError::Closed => {
            tracing::warn!(error = %e, "ingest refused, store unavailable");
            Status::unavailable(format!("store unavailable, retry later: {e}"))
        }
        other => {
            tracing::error!(error = %other, "ingest failed");
            Status::internal("internal error while storing")
        }
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let (rejected, message) = self
            .ingest(
                crate::otlp::Signal::Logs,
                request.into_inner(),
                otlp::logs_to_batch,
            )
            .await?;
        Ok(Response::new(otlp::logs_response(rejected, message)))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let (rejected, message) = self
            .ingest(
                crate::otlp::Signal::Metrics,
                request.into_inner(),
                otlp::metrics_to_batch,
            )
            .await?;
        Ok(Response::new(otlp::metrics_response(rejected, message)))
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let (rejected, message) = self
            .ingest(
                crate::otlp::Signal::Traces,
                request.into_inner(),
                otlp::traces_to_batch,
            )
            .await?;
        Ok(Response::new(otlp::traces_response(rejected, message)))
    }
}

/// OTLP clients retry `OUT_OF_RANGE` and `INTERNAL` (the codes tonic's
/// codec gives an oversized message and undecodable bytes), so a bad export
/// would be resent forever. This maps them, on the way out, to the codes
/// OTLP treats as final: `RESOURCE_EXHAUSTED` for too large (with a message
/// saying so) and `INVALID_ARGUMENT` for garbage. Our own `INTERNAL`
/// answers (a store failure) keep their code. The status travels in the
/// response headers (trailers-only answers) or in the trailers.
pub fn final_status_codes(
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let (mut parts, body) = response.into_parts();
    map_status(&mut parts.headers);
    http::Response::from_parts(parts, tonic::body::Body::new(FinalTrailers(body)))
}

fn map_status(h: &mut http::HeaderMap) {
    let status = h.get("grpc-status").and_then(|v| v.to_str().ok());
    let message = h
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
        // grpc-message is percent-encoded.
        .replace("%20", " ");
    let mapped = match status {
        Some("11") if message.contains("too large") => Some((
            "8",
            "the export is larger than max_body_bytes; send smaller batches",
        )),
        Some("13") if message.contains("decode") => {
            Some(("3", "the body is not a valid OTLP protobuf message"))
        }
        _ => None,
    };
    if let Some((code, text)) = mapped {
        h.insert("grpc-status", http::HeaderValue::from_static(code));
        // Spaces and these marks need no percent-encoding in grpc-message.
        h.insert("grpc-message", http::HeaderValue::from_static(text));
    }
}

/// A response body whose trailers go through [`map_status`].
struct FinalTrailers(tonic::body::Body);

impl http_body::Body for FinalTrailers {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.0).poll_frame(cx);
        polled.map(|frame| {
            frame.map(|f| {
                f.map(|mut frame| {
                    if let Some(trailers) = frame.trailers_mut() {
                        map_status(trailers);
                    }
                    frame
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// Requires an `ingest` token in the `authorization` metadata when set.
#[derive(Clone)]
struct IngestInterceptor {
    tokens: Option<TokenStore>,
}

impl tonic::service::Interceptor for IngestInterceptor {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(request);
        };
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match check_ingest_token(tokens, authorization) {
            Ok(_) => Ok(request),
            Err(IngestDenial::Forbidden) => Err(Status::permission_denied(
                "this token may not ingest; use a token of scope ingest",
            )),
            Err(IngestDenial::Unavailable) => {
                Err(Status::unavailable("token store unavailable, retry later"))
            }
            Err(IngestDenial::Unauthenticated(e)) => Err(Status::unauthenticated(format!(
                "an ingest token is required: {e}"
            ))),
        }
    }
}
