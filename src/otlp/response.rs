//! The OTLP export responses: empty on full success, `partial_success` with
//! the refused count and the reason otherwise. Shared by OTLP/HTTP (protobuf
//! bodies) and OTLP/gRPC.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};

/// `Some((rejected, message))` when the answer must carry `partial_success`.
fn partial(rejected: u64, message: Option<String>) -> Option<(i64, String)> {
    (rejected > 0 || message.is_some()).then(|| {
        (
            i64::try_from(rejected).unwrap_or(i64::MAX),
            message.unwrap_or_default(),
        )
    })
}

/// The logs export response.
pub fn logs_response(rejected: u64, message: Option<String>) -> ExportLogsServiceResponse {
    ExportLogsServiceResponse {
        partial_success: partial(rejected, message).map(|(n, error_message)| {
            ExportLogsPartialSuccess {
                rejected_log_records: n,
                error_message,
            }
        }),
    }
}

/// The metrics export response.
pub fn metrics_response(rejected: u64, message: Option<String>) -> ExportMetricsServiceResponse {
    ExportMetricsServiceResponse {
        partial_success: partial(rejected, message).map(|(n, error_message)| {
            ExportMetricsPartialSuccess {
                rejected_data_points: n,
                error_message,
            }
        }),
    }
}

/// The traces export response.
pub fn traces_response(rejected: u64, message: Option<String>) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: partial(rejected, message).map(|(n, error_message)| {
            ExportTracePartialSuccess {
                rejected_spans: n,
                error_message,
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_success_only_when_something_was_refused() {
        assert_eq!(logs_response(0, None).partial_success, None);
        let r = metrics_response(2, Some("bad id".into()))
            .partial_success
            .unwrap();
        assert_eq!(
            (r.rejected_data_points, r.error_message.as_str()),
            (2, "bad id")
        );
        let r = traces_response(0, Some("note".into()))
            .partial_success
            .unwrap();
        assert_eq!((r.rejected_spans, r.error_message.as_str()), (0, "note"));
    }
}
