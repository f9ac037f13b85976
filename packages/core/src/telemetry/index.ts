export {
  MeshTelemetry,
  type CallInfo,
  type CallRecorder,
  type CallResult,
  type MeshTelemetryOptions,
  type TelemetryOptions,
  type UpstreamHostInfo,
} from './mesh-telemetry.js';
export { formatAccessLogLine, type AccessLogEntry, type AccessLogSink } from './access-log.js';
export {
  ISTIO_LABEL_NAMES,
  istioLabels,
  localWorkload,
  endpointWorkload,
  namespaceFromPrincipal,
  serviceFromCluster,
  serviceFromClusterName,
  serviceFromAuthority,
  type IstioLabelName,
  type IstioLabels,
  type ServiceLabels,
  type WorkloadLabels,
} from './istio-labels.js';
export {
  ENVOY_DEFAULT_BUCKETS,
  ISTIO_REQUESTS_TOTAL,
  ISTIO_REQUEST_DURATION,
  ISTIO_REQUEST_BYTES,
  ISTIO_RESPONSE_BYTES,
  ISTIO_REQUEST_MESSAGES,
  ISTIO_RESPONSE_MESSAGES,
  ISTIO_METRIC_NAMES,
  type IstioMetricName,
} from './istio-metrics.js';
export { renderPrometheusText, escapeLabelValue } from './prometheus-text.js';
export {
  AGGREGATION_TEMPORALITY,
  DATA_POINT_TYPE,
  type IstioMetricCollection,
  type IstioMetricProducer,
  type ProducedDataPoint,
  type ProducedHistogram,
  type ProducedHistogramMetric,
  type ProducedMetric,
  type ProducedMetricDescriptor,
  type ProducedSumMetric,
} from './metric-producer.js';
export {
  DEFAULT_PROPAGATION,
  extractSpanContext,
  injectSpanContext,
  type HeaderSetter,
  type TracePropagationFormat,
} from './trace-context.js';
export {
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  decodePeerMetadata,
  peerMetadataHeaders,
  type PeerMetadataHeaders,
} from './peer-metadata.js';
