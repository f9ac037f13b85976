// An in-process aggregation of Istio's metrics in Prometheus's text exposition format
// (version 0.0.4), for an admin endpoint's /stats/prometheus when the application runs no
// OpenTelemetry exporter of its own. Cumulative since the process (or the aggregation)
// started, as Envoy's counters and histograms are. One series per label set; each series
// keeps its label text rendered once.
import {
  ENVOY_DEFAULT_BUCKETS,
  ISTIO_REQUEST_BYTES,
  ISTIO_REQUEST_DURATION,
  ISTIO_REQUEST_MESSAGES,
  ISTIO_REQUESTS_TOTAL,
  ISTIO_RESPONSE_BYTES,
  ISTIO_RESPONSE_MESSAGES,
} from './istio-metrics.js';

class HistogramData {
  /** Non-cumulative counts per bucket; the last one is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(buckets: number) {
    this.counts = new Float64Array(buckets + 1);
  }

  record(value: number, bounds: readonly number[]): void {
    // Prometheus buckets are upper-inclusive (le), as OTel's explicit buckets.
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** The aggregates of one label set. */
export class PrometheusSeries {
  /** `k="v",k2="v2"` (no braces), rendered once. */
  readonly labelText: string;
  requests = 0;
  requestMessages = 0;
  responseMessages = 0;
  readonly grpc: boolean;
  readonly duration: HistogramData;
  readonly requestBytes: HistogramData;
  readonly responseBytes: HistogramData;

  constructor(labels: Readonly<Record<string, string>>, grpc: boolean, buckets: number) {
    this.labelText = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
      .join(',');
    this.grpc = grpc;
    this.duration = new HistogramData(buckets);
    this.requestBytes = new HistogramData(buckets);
    this.responseBytes = new HistogramData(buckets);
  }
}

export interface SeriesSample {
  durationMs: number;
  requestBytes: number;
  responseBytes: number;
  requestMessages: number;
  responseMessages: number;
}

export class PrometheusAggregator {
  readonly #series: PrometheusSeries[] = [];
  readonly #bounds: readonly number[];

  constructor(bounds: readonly number[] = ENVOY_DEFAULT_BUCKETS) {
    this.#bounds = bounds;
  }

  /** A new series for a label set; the caller keeps it (one per label set). */
  series(labels: Readonly<Record<string, string>>, grpc: boolean): PrometheusSeries {
    const s = new PrometheusSeries(labels, grpc, this.#bounds.length);
    this.#series.push(s);
    return s;
  }

  record(s: PrometheusSeries, sample: SeriesSample): void {
    s.requests++;
    s.duration.record(sample.durationMs, this.#bounds);
    s.requestBytes.record(sample.requestBytes, this.#bounds);
    s.responseBytes.record(sample.responseBytes, this.#bounds);
    if (s.grpc) {
      s.requestMessages += sample.requestMessages;
      s.responseMessages += sample.responseMessages;
    }
  }

  /** The exposition text: every series that has recorded a call. */
  text(): string {
    const live = this.#series.filter((s) => s.requests > 0);
    let out = '';
    out += `# HELP ${ISTIO_REQUESTS_TOTAL} Requests, by Istio standard labels\n# TYPE ${ISTIO_REQUESTS_TOTAL} counter\n`;
    for (const s of live) out += `${ISTIO_REQUESTS_TOTAL}{${s.labelText}} ${s.requests}\n`;
    out += this.#histogram(ISTIO_REQUEST_DURATION, 'Request duration in milliseconds', live, (s) => s.duration);
    out += this.#histogram(ISTIO_REQUEST_BYTES, 'Request body size in bytes', live, (s) => s.requestBytes);
    out += this.#histogram(ISTIO_RESPONSE_BYTES, 'Response body size in bytes', live, (s) => s.responseBytes);
    const grpc = live.filter((s) => s.grpc);
    if (grpc.length > 0) {
      out += `# HELP ${ISTIO_REQUEST_MESSAGES} gRPC messages sent by the client\n# TYPE ${ISTIO_REQUEST_MESSAGES} counter\n`;
      for (const s of grpc) out += `${ISTIO_REQUEST_MESSAGES}{${s.labelText}} ${s.requestMessages}\n`;
      out += `# HELP ${ISTIO_RESPONSE_MESSAGES} gRPC messages sent by the server\n# TYPE ${ISTIO_RESPONSE_MESSAGES} counter\n`;
      for (const s of grpc) out += `${ISTIO_RESPONSE_MESSAGES}{${s.labelText}} ${s.responseMessages}\n`;
    }
    return out;
  }

  #histogram(name: string, help: string, live: readonly PrometheusSeries[], pick: (s: PrometheusSeries) => HistogramData): string {
    let out = `# HELP ${name} ${help}\n# TYPE ${name} histogram\n`;
    const bounds = this.#bounds;
    for (const s of live) {
      const h = pick(s);
      const sep = s.labelText === '' ? '' : ',';
      let cumulative = 0;
      for (let i = 0; i <= bounds.length; i++) {
        cumulative += h.counts[i]!;
        const le = i < bounds.length ? String(bounds[i]) : '+Inf';
        out += `${name}_bucket{${s.labelText}${sep}le="${le}"} ${cumulative}\n`;
      }
      out += `${name}_sum{${s.labelText}} ${h.sum}\n`;
      out += `${name}_count{${s.labelText}} ${h.count}\n`;
    }
    return out;
  }
}

/** Prometheus text format: backslash, double quote and line feed are escaped in label values. */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}
