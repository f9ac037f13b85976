// Istio's metrics as an OpenTelemetry SDK MetricProducer, read from the in-process
// aggregation. A MetricReader given `metricProducers: [producer]` (sdk-metrics
// MetricReaderOptions) calls collect() beside its own SDK's and exports the scopes it returns
// with its own, so Prometheus, OTLP or any other exporter gets the same series the API
// instruments would have made, at the aggregation's per-call cost instead of the SDK's
// (whose every synchronous record() hashes the 25-label attribute set to find its series).
//
// The SDK is the application's dependency, not meshlet's: the shapes below are the ones
// sdk-metrics 2.x declares (export/MetricData.ts, export/MetricProducer.ts,
// aggregator/types.ts), written out here so that a producer satisfies its MetricProducer
// structurally. Its enums are plain numbers at run time; the values are theirs.
import type { AttributeValue, Attributes, HrTime, ValueType } from '@opentelemetry/api';
import { otel } from './otel.js';
import {
  ISTIO_METRIC_INFO,
  ISTIO_REQUEST_BYTES,
  ISTIO_REQUEST_DURATION,
  ISTIO_REQUEST_MESSAGES,
  ISTIO_REQUESTS_TOTAL,
  ISTIO_RESPONSE_BYTES,
  ISTIO_RESPONSE_MESSAGES,
  METER_NAME,
  type IstioMetricName,
} from './istio-metrics.js';
import type { BucketHistogram, PrometheusData, PrometheusSource } from './prometheus-text.js';

/** sdk-metrics `AggregationTemporality`. */
export const AGGREGATION_TEMPORALITY = Object.freeze({ DELTA: 0, CUMULATIVE: 1 } as const);
/** sdk-metrics `DataPointType`. */
export const DATA_POINT_TYPE = Object.freeze({ HISTOGRAM: 0, EXPONENTIAL_HISTOGRAM: 1, GAUGE: 2, SUM: 3 } as const);

/** sdk-metrics `MetricDescriptor`. */
export interface ProducedMetricDescriptor {
  readonly name: string;
  readonly description: string;
  readonly unit: string;
  readonly valueType: ValueType;
}

/** sdk-metrics `DataPoint<T>`: one label set's value over [startTime, endTime]. */
export interface ProducedDataPoint<T> {
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly attributes: Attributes;
  readonly value: T;
}

/** sdk-metrics `Histogram`: explicit buckets, `counts` one longer than `boundaries` (the last is +Inf). */
export interface ProducedHistogram {
  buckets: { boundaries: number[]; counts: number[] };
  sum?: number;
  count: number;
  min?: number;
  max?: number;
}

/** sdk-metrics `SumMetricData`. */
export interface ProducedSumMetric {
  readonly descriptor: ProducedMetricDescriptor;
  readonly aggregationTemporality: typeof AGGREGATION_TEMPORALITY.CUMULATIVE;
  readonly dataPointType: typeof DATA_POINT_TYPE.SUM;
  readonly dataPoints: ProducedDataPoint<number>[];
  readonly isMonotonic: boolean;
}

/** sdk-metrics `HistogramMetricData`. */
export interface ProducedHistogramMetric {
  readonly descriptor: ProducedMetricDescriptor;
  readonly aggregationTemporality: typeof AGGREGATION_TEMPORALITY.CUMULATIVE;
  readonly dataPointType: typeof DATA_POINT_TYPE.HISTOGRAM;
  readonly dataPoints: ProducedDataPoint<ProducedHistogram>[];
}

export type ProducedMetric = ProducedSumMetric | ProducedHistogramMetric;

/** sdk-metrics `Resource` (from @opentelemetry/resources), as far as a producer's result needs one. */
export interface ProducedResource {
  readonly attributes: Attributes;
  merge(other: ProducedResource | null): ProducedResource;
  getRawAttributes(): Array<[string, AttributeValue | undefined]>;
}

/** sdk-metrics `CollectionResult`. */
export interface IstioMetricCollection {
  resourceMetrics: {
    resource: ProducedResource;
    scopeMetrics: Array<{ scope: { name: string; version?: string; schemaUrl?: string }; metrics: ProducedMetric[] }>;
  };
  errors: unknown[];
}

/**
 * An OpenTelemetry SDK `MetricProducer` of Istio's metrics:
 * `new PrometheusExporter({ metricProducers: [mesh.telemetry.metricProducer()] })`.
 */
export interface IstioMetricProducer {
  collect(options?: { timeoutMillis?: number }): Promise<IstioMetricCollection>;
}

/** What the producer reads: the aggregation's label sets, the disabled metrics, and its clocks. */
export interface IstioMetricSource {
  /** Every label set; those with no aggregated call are left out. */
  series(): Iterable<PrometheusSource>;
  disabled(): ReadonlySet<string>;
  /** Wall-clock milliseconds when the aggregation started (every point's start: the data are cumulative). */
  startTimeMs(): number;
  /** Wall-clock milliseconds now (every point's end). */
  nowMs(): number;
}

// A reader keeps its own SDK's Resource and takes only a producer's scopes (sdk-metrics
// MetricReader.collect): this one is never exported, but the result's type has one.
const EMPTY_RESOURCE: ProducedResource = Object.freeze({
  attributes: Object.freeze({}),
  merge: (other: ProducedResource | null) => other ?? EMPTY_RESOURCE,
  getRawAttributes: () => [],
});

/** OTel's HrTime: [seconds, nanoseconds] since the epoch. */
export function hrTimeFromMs(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.min(999_999_999, Math.round((ms - s * 1000) * 1e6))];
}

/** The producer of one aggregation. */
export function createIstioMetricProducer(source: IstioMetricSource): IstioMetricProducer {
  return {
    collect: () => {
      try {
        return Promise.resolve(collectIstioMetrics(source));
      } catch (err) {
        // A reader merges every producer's result with Promise.all: a rejection would lose
        // the SDK's own metrics too, so a failure is reported as the SDK reports its own.
        return Promise.resolve({ resourceMetrics: { resource: EMPTY_RESOURCE, scopeMetrics: [] }, errors: [err] });
      }
    },
  };
}

/**
 * The aggregation as one collection: a cumulative point per label set for each metric not
 * disabled, the gRPC message counters for gRPC label sets only, in the order the API
 * instruments are created. Metrics with no points are left out, and the scope when all are
 * (as the SDK leaves out what recorded nothing).
 */
export function collectIstioMetrics(source: IstioMetricSource): IstioMetricCollection {
  const live: Array<{ attributes: Attributes; grpc: boolean; data: PrometheusData }> = [];
  for (const s of source.series()) if (s.prom && s.prom.requests > 0) live.push({ attributes: s.labels, grpc: s.grpc, data: s.prom });
  const grpc = live.filter((s) => s.grpc);
  const disabled = source.disabled();
  const startTime = hrTimeFromMs(source.startTimeMs());
  const endTime = hrTimeFromMs(source.nowMs());
  const metrics: ProducedMetric[] = [];

  const sum = (name: IstioMetricName, of: typeof live, pick: (d: PrometheusData) => number) => {
    if (disabled.has(name) || of.length === 0) return;
    metrics.push({
      descriptor: descriptor(name),
      aggregationTemporality: AGGREGATION_TEMPORALITY.CUMULATIVE,
      dataPointType: DATA_POINT_TYPE.SUM,
      isMonotonic: true,
      dataPoints: of.map((s) => ({ startTime, endTime, attributes: s.attributes, value: pick(s.data) })),
    });
  };
  const histogram = (name: IstioMetricName, pick: (d: PrometheusData) => BucketHistogram) => {
    if (disabled.has(name) || live.length === 0) return;
    metrics.push({
      descriptor: descriptor(name),
      aggregationTemporality: AGGREGATION_TEMPORALITY.CUMULATIVE,
      dataPointType: DATA_POINT_TYPE.HISTOGRAM,
      dataPoints: live.map((s) => ({ startTime, endTime, attributes: s.attributes, value: histogramValue(pick(s.data)) })),
    });
  };
  sum(ISTIO_REQUESTS_TOTAL, live, (d) => d.requests);
  sum(ISTIO_REQUEST_MESSAGES, grpc, (d) => d.requestMessages);
  sum(ISTIO_RESPONSE_MESSAGES, grpc, (d) => d.responseMessages);
  histogram(ISTIO_REQUEST_DURATION, (d) => d.duration);
  histogram(ISTIO_REQUEST_BYTES, (d) => d.requestBytes);
  histogram(ISTIO_RESPONSE_BYTES, (d) => d.responseBytes);
  return {
    resourceMetrics: { resource: EMPTY_RESOURCE, scopeMetrics: metrics.length > 0 ? [{ scope: { name: METER_NAME }, metrics }] : [] },
    errors: [],
  };
}

function descriptor(name: IstioMetricName): ProducedMetricDescriptor {
  const { description, unit } = ISTIO_METRIC_INFO[name];
  // The API instruments are created without a value type, which the SDK takes as DOUBLE.
  return { name, description, unit, valueType: otel().ValueType.DOUBLE };
}

function histogramValue(h: BucketHistogram): ProducedHistogram {
  const value: ProducedHistogram = { buckets: { boundaries: [...h.bounds], counts: Array.from(h.counts) }, sum: h.sum, count: h.count };
  if (h.count > 0) {
    value.min = h.min;
    value.max = h.max;
  }
  return value;
}
