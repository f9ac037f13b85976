// Istio's metrics in Prometheus's text exposition format (version 0.0.4), rendered from the
// in-process aggregation, for an admin endpoint's /stats/prometheus when the application runs
// no OpenTelemetry exporter of its own. Values are cumulative since the aggregation was
// switched on, as Envoy's counters and histograms are since the proxy started.
import {
  ISTIO_REQUEST_BYTES,
  ISTIO_REQUEST_DURATION,
  ISTIO_REQUEST_MESSAGES,
  ISTIO_REQUESTS_TOTAL,
  ISTIO_RESPONSE_BYTES,
  ISTIO_RESPONSE_MESSAGES,
} from './istio-metrics.js';

/** A histogram with fixed upper-inclusive (`le`) bounds, as Prometheus and OTel's explicit buckets count. */
export class BucketHistogram {
  /** Non-cumulative counts per bucket; the last one is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  /** Infinity and -Infinity until the first value (OTel's histogram points carry them; Prometheus text does not). */
  min = Infinity;
  max = -Infinity;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  record(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }
}

/** What the aggregation keeps for one label set. */
export class PrometheusData {
  requests = 0;
  requestMessages = 0;
  responseMessages = 0;
  readonly duration: BucketHistogram;
  readonly requestBytes: BucketHistogram;
  readonly responseBytes: BucketHistogram;

  constructor(bounds: readonly number[]) {
    this.duration = new BucketHistogram(bounds);
    this.requestBytes = new BucketHistogram(bounds);
    this.responseBytes = new BucketHistogram(bounds);
  }
}

/** A label set as the renderer needs it: its labels, whether it is gRPC, and its data. */
export interface PrometheusSource {
  readonly labels: Readonly<Record<string, string>>;
  readonly grpc: boolean;
  readonly prom: PrometheusData | undefined;
}

const labelTexts = new WeakMap<object, string>();

/** `k="v",k2="v2"` (no braces), rendered once per label set. */
function labelText(labels: Readonly<Record<string, string>>): string {
  let t = labelTexts.get(labels);
  if (t === undefined) {
    t = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
      .join(',');
    labelTexts.set(labels, t);
  }
  return t;
}

/** The exposition text of every label set that recorded a call. */
export function renderPrometheusText(sources: Iterable<PrometheusSource>, disabled: ReadonlySet<string> = new Set()): string {
  const live: Array<{ text: string; grpc: boolean; data: PrometheusData }> = [];
  for (const s of sources) if (s.prom && s.prom.requests > 0) live.push({ text: labelText(s.labels), grpc: s.grpc, data: s.prom });
  const on = (name: string) => !disabled.has(name);
  let out = '';
  if (on(ISTIO_REQUESTS_TOTAL)) {
    out += `# HELP ${ISTIO_REQUESTS_TOTAL} Requests, by Istio standard labels\n# TYPE ${ISTIO_REQUESTS_TOTAL} counter\n`;
    for (const s of live) out += `${ISTIO_REQUESTS_TOTAL}{${s.text}} ${s.data.requests}\n`;
  }
  if (on(ISTIO_REQUEST_DURATION)) out += histogram(ISTIO_REQUEST_DURATION, 'Request duration in milliseconds', live, (d) => d.duration);
  if (on(ISTIO_REQUEST_BYTES)) out += histogram(ISTIO_REQUEST_BYTES, 'Request body size in bytes', live, (d) => d.requestBytes);
  if (on(ISTIO_RESPONSE_BYTES)) out += histogram(ISTIO_RESPONSE_BYTES, 'Response body size in bytes', live, (d) => d.responseBytes);
  const grpc = live.filter((s) => s.grpc);
  if (grpc.length > 0 && on(ISTIO_REQUEST_MESSAGES)) {
    out += `# HELP ${ISTIO_REQUEST_MESSAGES} gRPC messages sent by the client\n# TYPE ${ISTIO_REQUEST_MESSAGES} counter\n`;
    for (const s of grpc) out += `${ISTIO_REQUEST_MESSAGES}{${s.text}} ${s.data.requestMessages}\n`;
  }
  if (grpc.length > 0 && on(ISTIO_RESPONSE_MESSAGES)) {
    out += `# HELP ${ISTIO_RESPONSE_MESSAGES} gRPC messages sent by the server\n# TYPE ${ISTIO_RESPONSE_MESSAGES} counter\n`;
    for (const s of grpc) out += `${ISTIO_RESPONSE_MESSAGES}{${s.text}} ${s.data.responseMessages}\n`;
  }
  return out;
}

function histogram(
  name: string,
  help: string,
  live: ReadonlyArray<{ text: string; data: PrometheusData }>,
  pick: (d: PrometheusData) => BucketHistogram,
): string {
  let out = `# HELP ${name} ${help}\n# TYPE ${name} histogram\n`;
  for (const s of live) {
    const h = pick(s.data);
    const sep = s.text === '' ? '' : ',';
    let cumulative = 0;
    for (let i = 0; i <= h.bounds.length; i++) {
      cumulative += h.counts[i]!;
      const le = i < h.bounds.length ? String(h.bounds[i]) : '+Inf';
      out += `${name}_bucket{${s.text}${sep}le="${le}"} ${cumulative}\n`;
    }
    out += `${name}_sum{${s.text}} ${h.sum}\n`;
    out += `${name}_count{${s.text}} ${h.count}\n`;
  }
  return out;
}

/** Prometheus text format: backslash, double quote and line feed are escaped in label values. */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}
