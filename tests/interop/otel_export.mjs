// Sends Claude-Code-shaped logs, metrics and traces to tokentally with the
// official OpenTelemetry JS exporters (the ones Claude Code bundles).
//
// Usage: node otel_export.mjs <grpc|http/protobuf|http/json> <run-id> <events>
// Endpoint, headers and compression come from the standard environment
// variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_EXPORTER_OTLP_COMPRESSION), exactly as Claude Code configures them.
// Exits non-zero if any export failed.

import { diag, DiagLogLevel } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  AggregationTemporality,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import * as logsHttp from '@opentelemetry/exporter-logs-otlp-http';
import * as logsProto from '@opentelemetry/exporter-logs-otlp-proto';
import * as logsGrpc from '@opentelemetry/exporter-logs-otlp-grpc';
import * as metricsHttp from '@opentelemetry/exporter-metrics-otlp-http';
import * as metricsProto from '@opentelemetry/exporter-metrics-otlp-proto';
import * as metricsGrpc from '@opentelemetry/exporter-metrics-otlp-grpc';
import * as traceHttp from '@opentelemetry/exporter-trace-otlp-http';
import * as traceProto from '@opentelemetry/exporter-trace-otlp-proto';
import * as traceGrpc from '@opentelemetry/exporter-trace-otlp-grpc';

const [protocol, runId, eventsArg] = process.argv.slice(2);
const events = Number(eventsArg ?? '10');
if (!['grpc', 'http/protobuf', 'http/json'].includes(protocol) || !runId || !(events > 0)) {
  console.error('usage: node otel_export.mjs <grpc|http/protobuf|http/json> <run-id> <events>');
  process.exit(2);
}

const errors = [];
diag.setLogger(
  {
    error: (...a) => errors.push(a.map(String).join(' ')),
    warn: (...a) => {
      const text = a.map(String).join(' ');
      // A response the exporter cannot parse is a server bug: fail on it.
      if (text.includes('deserialize')) errors.push(text);
      else console.error('warn:', text);
    },
    info: () => {},
    debug: () => {},
    verbose: () => {},
  },
  DiagLogLevel.WARN,
);

const modules = {
  grpc: [logsGrpc, metricsGrpc, traceGrpc],
  'http/protobuf': [logsProto, metricsProto, traceProto],
  'http/json': [logsHttp, metricsHttp, traceHttp],
}[protocol];
const [L, M, T] = modules;
const base = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
const url = (path) => (protocol === 'grpc' ? base : `${base}${path}`);

// The ExportResult of every export, so that a refused export fails this script.
function watch(exporter, name) {
  const original = exporter.export.bind(exporter);
  exporter.export = (items, done) =>
    original(items, (result) => {
      if (result.code !== 0) errors.push(`${name}: ${result.error?.message ?? 'failed'}`);
      done(result);
    });
  return exporter;
}

const resource = resourceFromAttributes({
  'service.name': 'claude-code',
  'service.version': '2.1.330',
  'team.id': 'interop',
});
const session = `session-${runId}`;
const email = `dev-${runId}@example.com`;
const common = {
  'user.id': `uid-${runId}`,
  'user.email': email,
  'session.id': session,
  'terminal.type': 'xterm-256color',
  'app.version': '2.1.330',
  'team.id': 'interop',
};

// Logs: `events` api_request events and one tool_result per event.
const logExporter = watch(new L.OTLPLogExporter({ url: url('/v1/logs') }), 'logs');
const loggerProvider = new LoggerProvider({
  resource,
  processors: [new BatchLogRecordProcessor(logExporter, { maxExportBatchSize: 512, maxQueueSize: 100000, scheduledDelayMillis: 60000 })],
});
const logger = loggerProvider.getLogger('com.anthropic.claude_code.events', '2.1.330');
let sequence = 0;
const t0 = Date.now() - 60_000;
for (let i = 0; i < events; i++) {
  logger.emit({
    timestamp: t0 + i,
    body: 'claude_code.api_request',
    attributes: {
      ...common,
      'event.name': 'api_request',
      'event.sequence': sequence++,
      'prompt.id': `prompt-${runId}`,
      model: i % 2 === 0 ? 'claude-opus-5-5' : 'claude-haiku-5-0',
      input_tokens: 100 + i,
      output_tokens: 10 + i,
      cache_read_tokens: i,
      cache_creation_tokens: 2 * i,
      cost_usd: 0.001 * (i + 1),
      duration_ms: 50 + i,
    },
  });
  logger.emit({
    timestamp: t0 + i,
    body: 'claude_code.tool_result',
    attributes: {
      ...common,
      'event.name': 'tool_result',
      'event.sequence': sequence++,
      'prompt.id': `prompt-${runId}`,
      tool_name: 'Edit',
      tool_use_id: `toolu_${runId}_${i}`,
      success: i % 5 === 0 ? 'false' : 'true',
      duration_ms: String(20 + i),
      tool_input: JSON.stringify({
        file_path: `/repo/${runId}/file${i % 3}.rs`,
        old_string: 'secret old text',
        new_string: 'secret new text',
      }),
    },
  });
}

// Metrics: a delta cost counter and a histogram.
const metricExporter = watch(
  new M.OTLPMetricExporter({
    url: url('/v1/metrics'),
    temporalityPreference: M.AggregationTemporalityPreference?.DELTA ?? AggregationTemporality.DELTA,
  }),
  'metrics',
);
const reader = new PeriodicExportingMetricReader({
  exporter: metricExporter,
  exportIntervalMillis: 60_000,
});
const meterProvider = new MeterProvider({ resource, readers: [reader] });
const meter = meterProvider.getMeter('com.anthropic.claude_code', '2.1.330');
const cost = meter.createCounter('claude_code.cost.usage', { unit: 'USD' });
cost.add(0.25, { ...common, model: 'claude-opus-5-5' });
cost.add(0.5, { ...common, model: 'claude-opus-5-5' });
const latency = meter.createHistogram('interop.latency', { unit: 'ms' });
for (const v of [5, 15, 25]) latency.record(v, { 'session.id': session });

// Traces: interaction → tool (with file_path) → blocked_on_user (decision).
const spanExporter = watch(new T.OTLPTraceExporter({ url: url('/v1/traces') }), 'traces');
const tracerProvider = new BasicTracerProvider({
  resource,
  spanProcessors: [new BatchSpanProcessor(spanExporter)],
});
const tracer = tracerProvider.getTracer('com.anthropic.claude_code.tracing', '1.0.0');
const { context, trace } = await import('@opentelemetry/api');
const interaction = tracer.startSpan('claude_code.interaction', { attributes: { ...common } });
const ictx = trace.setSpan(context.active(), interaction);
const tool = tracer.startSpan(
  'claude_code.tool',
  { attributes: { ...common, tool_name: 'Edit', file_path: `/repo/${runId}/traced.rs`, duration_ms: 42 } },
  ictx,
);
const tctx = trace.setSpan(ictx, tool);
const blocked = tracer.startSpan(
  'claude_code.tool.blocked_on_user',
  { attributes: { ...common, decision: 'reject', source: 'user_reject', duration_ms: 7 } },
  tctx,
);
blocked.end();
tool.end();
interaction.end();

await loggerProvider.forceFlush();
await reader.forceFlush();
await tracerProvider.forceFlush();
await Promise.all([loggerProvider.shutdown(), meterProvider.shutdown(), tracerProvider.shutdown()]);

if (errors.length > 0) {
  console.error(`export errors (${errors.length}):\n${errors.join('\n')}`);
  process.exit(1);
}
console.log(JSON.stringify({ protocol, runId, events, logs: events * 2, spans: 3 }));
