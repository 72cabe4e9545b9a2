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
use crate::store::{Store, StoreError};

/// The three OTLP services over one store.
#[derive(Clone)]
pub struct OtlpGrpc {
    store: Store,
    decode: DecodeOptions,
}

impl OtlpGrpc {
    /// Builds the services.
    pub fn new(store: Store, decode: DecodeOptions) -> Self {
        OtlpGrpc { store, decode }
    }

    /// Converts on a blocking thread and writes; the partial-success count and message.
    async fn ingest<R: Send + 'static>(
        &self,
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
        if !decoded.batch.is_empty() {
            self.store
                .write(decoded.batch)
                .await
                .map_err(store_status)?;
        }
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
            .ingest(request.into_inner(), otlp::logs_to_batch)
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
            .ingest(request.into_inner(), otlp::metrics_to_batch)
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
            .ingest(request.into_inner(), otlp::traces_to_batch)
            .await?;
        Ok(Response::new(otlp::traces_response(rejected, message)))
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
