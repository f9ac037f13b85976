// Istio's standard HTTP/gRPC metrics as OpenTelemetry instruments, created once per
// MeterProvider. Names and kinds are Istio's (istio/proxy istio_stats.cc); the histograms
// carry Envoy's default bucket boundaries as an OTel advice, so an SDK with default views
// exports the same buckets a sidecar would.
//
// The counters are observable: the request path counts in its own per-label-set cells and
// the SDK reads them when it collects. An SDK's synchronous record() hashes the attribute set
// on every call (25 labels here), which is most of what telemetry costs a request; this
// keeps that to the three histograms.
import {
  createNoopMeter,
  type Attributes,
  type BatchObservableCallback,
  type Histogram,
  type Meter,
  type MeterProvider,
  type ObservableCounter,
} from '@opentelemetry/api';

export const ISTIO_REQUESTS_TOTAL = 'istio_requests_total';
export const ISTIO_REQUEST_DURATION = 'istio_request_duration_milliseconds';
export const ISTIO_REQUEST_BYTES = 'istio_request_bytes';
export const ISTIO_RESPONSE_BYTES = 'istio_response_bytes';
export const ISTIO_REQUEST_MESSAGES = 'istio_request_messages_total';
export const ISTIO_RESPONSE_MESSAGES = 'istio_response_messages_total';

/** Envoy's default histogram buckets (source/common/stats/histogram_impl.h), used by every Istio histogram. */
export const ENVOY_DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
]);

export const METER_NAME = '@meshlet/core';

/** The counts of one label set since the instruments were created. */
export interface CountedSeries {
  readonly attrs: Attributes;
  readonly grpc: boolean;
  otelRequests: number;
  otelRequestMessages: number;
  otelResponseMessages: number;
}

export interface IstioInstruments {
  readonly provider: MeterProvider;
  readonly duration: Histogram<Attributes>;
  readonly requestBytes: Histogram<Attributes>;
  readonly responseBytes: Histogram<Attributes>;
  /** Stop reporting the counters (the instruments are being replaced). */
  close(): void;
}

// The API's no-op meter is one class: a provider whose meter is an instance of it records
// nothing, and the request path can skip the work of building labels.
const NoopMeter = createNoopMeter().constructor;

/**
 * The instruments of a provider, or undefined when the provider is the API's no-op.
 * `series` lists the label sets whose counters the SDK reads at collection.
 */
export function createIstioInstruments(provider: MeterProvider, series: () => Iterable<CountedSeries>, version?: string): IstioInstruments | undefined {
  const meter: Meter = provider.getMeter(METER_NAME, version);
  if (meter instanceof NoopMeter) return undefined;
  const buckets = { advice: { explicitBucketBoundaries: [...ENVOY_DEFAULT_BUCKETS] } };
  const requests = meter.createObservableCounter(ISTIO_REQUESTS_TOTAL, { description: 'Requests, by Istio standard labels' });
  const requestMessages = meter.createObservableCounter(ISTIO_REQUEST_MESSAGES, { description: 'gRPC messages sent by the client' });
  const responseMessages = meter.createObservableCounter(ISTIO_RESPONSE_MESSAGES, { description: 'gRPC messages sent by the server' });
  const observables: ObservableCounter<Attributes>[] = [requests, requestMessages, responseMessages];
  const callback: BatchObservableCallback<Attributes> = (result) => {
    for (const s of series()) {
      if (s.otelRequests === 0) continue;
      result.observe(requests, s.otelRequests, s.attrs);
      if (s.grpc) {
        result.observe(requestMessages, s.otelRequestMessages, s.attrs);
        result.observe(responseMessages, s.otelResponseMessages, s.attrs);
      }
    }
  };
  meter.addBatchObservableCallback(callback, observables);
  return {
    provider,
    duration: meter.createHistogram(ISTIO_REQUEST_DURATION, { description: 'Request duration', unit: 'ms', ...buckets }),
    requestBytes: meter.createHistogram(ISTIO_REQUEST_BYTES, { description: 'Request body size', unit: 'By', ...buckets }),
    responseBytes: meter.createHistogram(ISTIO_RESPONSE_BYTES, { description: 'Response body size', unit: 'By', ...buckets }),
    close: () => meter.removeBatchObservableCallback(callback, observables),
  };
}
