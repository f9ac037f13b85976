// Istio's standard HTTP/gRPC metrics as OpenTelemetry instruments, created once per
// MeterProvider. Names and kinds are Istio's (istio/proxy istio_stats.cc); the histograms
// carry Envoy's default bucket boundaries as an OTel advice, so an SDK with default views
// exports the same buckets a sidecar would.
//
// The counters are observable: the request path counts in its own per-label-set cells and
// the SDK reads them when it collects. An SDK's synchronous record() hashes the attribute set
// on every call (25 labels here), which is most of what telemetry costs a request; this
// keeps that to the three histograms.
import type { Attributes, BatchObservableCallback, Histogram, Meter, MeterProvider, ObservableCounter } from '@opentelemetry/api';
import { otel } from './otel.js';

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

/** Istio's HTTP/gRPC metric names; any of them can be switched off, as Istio's Telemetry API `disabled` does. */
export type IstioMetricName =
  | typeof ISTIO_REQUESTS_TOTAL
  | typeof ISTIO_REQUEST_DURATION
  | typeof ISTIO_REQUEST_BYTES
  | typeof ISTIO_RESPONSE_BYTES
  | typeof ISTIO_REQUEST_MESSAGES
  | typeof ISTIO_RESPONSE_MESSAGES;

export const ISTIO_METRIC_NAMES: readonly IstioMetricName[] = Object.freeze([
  ISTIO_REQUESTS_TOTAL,
  ISTIO_REQUEST_DURATION,
  ISTIO_REQUEST_BYTES,
  ISTIO_RESPONSE_BYTES,
  ISTIO_REQUEST_MESSAGES,
  ISTIO_RESPONSE_MESSAGES,
]);

/**
 * How each metric is described: the instruments are created with these and the metric
 * producer (metric-producer.ts) describes its data with them, so a scrape reads the same
 * either way. Counters have no unit, as the instruments were created without one.
 */
export const ISTIO_METRIC_INFO: Readonly<Record<IstioMetricName, { readonly kind: 'counter' | 'histogram'; readonly description: string; readonly unit: string }>> =
  Object.freeze({
    [ISTIO_REQUESTS_TOTAL]: { kind: 'counter', description: 'Requests, by Istio standard labels', unit: '' },
    [ISTIO_REQUEST_DURATION]: { kind: 'histogram', description: 'Request duration', unit: 'ms' },
    [ISTIO_REQUEST_BYTES]: { kind: 'histogram', description: 'Request body size', unit: 'By' },
    [ISTIO_RESPONSE_BYTES]: { kind: 'histogram', description: 'Response body size', unit: 'By' },
    [ISTIO_REQUEST_MESSAGES]: { kind: 'counter', description: 'gRPC messages sent by the client', unit: '' },
    [ISTIO_RESPONSE_MESSAGES]: { kind: 'counter', description: 'gRPC messages sent by the server', unit: '' },
  });

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
  /** Undefined when disabled. */
  readonly duration: Histogram<Attributes> | undefined;
  readonly requestBytes: Histogram<Attributes> | undefined;
  readonly responseBytes: Histogram<Attributes> | undefined;
  /** Stop reporting the counters (the instruments are being replaced). */
  close(): void;
}

// The API's no-op meter is one class: a provider whose meter is an instance of it records
// nothing, and the request path can skip the work of building labels. Taken from the API when
// first needed (telemetry/otel.ts).
let noopMeter: (abstract new (...args: never[]) => unknown) | undefined;

/**
 * The instruments of a provider, or undefined when the provider is the API's no-op.
 * `series` lists the label sets whose counters the SDK reads at collection.
 */
export function createIstioInstruments(
  provider: MeterProvider,
  series: () => Iterable<CountedSeries>,
  disabled: ReadonlySet<string> = new Set(),
  version?: string,
): IstioInstruments | undefined {
  const meter: Meter = provider.getMeter(METER_NAME, version);
  noopMeter ??= otel().createNoopMeter().constructor as abstract new (...args: never[]) => unknown;
  if (meter instanceof noopMeter) return undefined;
  const on = (name: IstioMetricName) => !disabled.has(name);
  const buckets = { advice: { explicitBucketBoundaries: [...ENVOY_DEFAULT_BUCKETS] } };
  const counter = (name: IstioMetricName) =>
    on(name) ? meter.createObservableCounter(name, { description: ISTIO_METRIC_INFO[name].description }) : undefined;
  const requests = counter(ISTIO_REQUESTS_TOTAL);
  const requestMessages = counter(ISTIO_REQUEST_MESSAGES);
  const responseMessages = counter(ISTIO_RESPONSE_MESSAGES);
  const observables = [requests, requestMessages, responseMessages].filter((o): o is ObservableCounter<Attributes> => o !== undefined);
  const callback: BatchObservableCallback<Attributes> = (result) => {
    for (const s of series()) {
      if (s.otelRequests === 0) continue;
      if (requests) result.observe(requests, s.otelRequests, s.attrs);
      if (s.grpc) {
        if (requestMessages) result.observe(requestMessages, s.otelRequestMessages, s.attrs);
        if (responseMessages) result.observe(responseMessages, s.otelResponseMessages, s.attrs);
      }
    }
  };
  if (observables.length > 0) meter.addBatchObservableCallback(callback, observables);
  const histogram = (name: IstioMetricName) => {
    const { description, unit } = ISTIO_METRIC_INFO[name];
    return on(name) ? meter.createHistogram(name, { description, unit, ...buckets }) : undefined;
  };
  return {
    provider,
    duration: histogram(ISTIO_REQUEST_DURATION),
    requestBytes: histogram(ISTIO_REQUEST_BYTES),
    responseBytes: histogram(ISTIO_RESPONSE_BYTES),
    close: () => {
      if (observables.length > 0) meter.removeBatchObservableCallback(callback, observables);
    },
  };
}
