// MeshTelemetry.metricProducer() without an SDK: the shapes of what collect() returns (scope,
// temporality, point types, one point per label set, Envoy's buckets, min/max, start and end
// times), gRPC message counters for gRPC label sets only, disabled metrics left out, and how
// the producer sits with the `prometheus` option. An SDK reader and exporter reading it are
// exercised in test/telemetry-producer.test.ts.
import { describe, expect, it } from 'vitest';
import type { ClusterResource } from '@meshlet/xds-client';
import {
  AGGREGATION_TEMPORALITY,
  DATA_POINT_TYPE,
  ENVOY_DEFAULT_BUCKETS,
  MeshTelemetry,
  type IstioMetricCollection,
  type ProducedHistogram,
  type ProducedMetric,
} from '../src/telemetry/index.js';
import { hrTimeFromMs } from '../src/telemetry/metric-producer.js';

const REVIEWS = {
  name: 'outbound|9080||reviews.bookinfo.svc.cluster.local',
  metadata: { filterMetadata: { istio: { services: [{ host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' }] } }, typedFilterMetadata: {} },
} as unknown as ClusterResource;

function setup(options: { prometheus?: boolean; disabledMetrics?: Array<'istio_request_bytes' | 'istio_response_bytes' | 'istio_request_messages_total'> } = {}) {
  let mono = 0;
  let wall = 1_700_000_000_250;
  const t = new MeshTelemetry({ now: () => mono, wallClock: () => wall, ...options });
  const call = (o: { status: number; ms: number; bytes?: number; grpc?: number; flags?: string }) => {
    const r = t.startCall({ reporter: 'source', protocol: o.grpc === undefined ? 'http' : 'grpc', authority: 'reviews:9080' })!;
    r.route(REVIEWS);
    r.requestBytes(3);
    r.responseBytes(o.bytes ?? 0);
    if (o.grpc !== undefined) r.messages(2, 5);
    mono += o.ms;
    r.end({ status: o.status, ...(o.flags ? { flags: o.flags } : {}), ...(o.grpc !== undefined ? { grpcStatus: o.grpc } : {}) });
  };
  return { t, call, setWall: (ms: number) => void (wall = ms) };
}

function metric(c: IstioMetricCollection, name: string): ProducedMetric | undefined {
  return c.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
}

describe('MeshTelemetry.metricProducer()', () => {
  it('turns the aggregation on and returns the same producer every time', async () => {
    const { t, call } = setup();
    expect(t.active).toBe(false);
    expect(t.prometheusText()).toBeUndefined();
    const p = t.metricProducer();
    expect(t.metricProducer()).toBe(p);
    expect(t.active).toBe(true);
    // Nothing recorded yet: no scope at all, as the SDK leaves out what recorded nothing.
    expect(await p.collect()).toEqual({ resourceMetrics: { resource: expect.anything(), scopeMetrics: [] }, errors: [] });
    call({ status: 200, ms: 3 });
    expect(t.prometheusText()).toContain('istio_requests_total{');
  });

  it('collects cumulative sums and explicit-bucket histograms, one point per label set', async () => {
    const { t, call, setWall } = setup();
    const p = t.metricProducer();
    call({ status: 200, ms: 1.9, bytes: 40 });
    call({ status: 200, ms: 30, bytes: 7000 });
    call({ status: 503, flags: 'UO', ms: 0 });
    setWall(1_700_000_009_500.5);
    const c = await p.collect();
    expect(c.errors).toEqual([]);
    expect(c.resourceMetrics.scopeMetrics.map((s) => s.scope)).toEqual([{ name: '@meshlet/core' }]);
    // No gRPC label set: no message counters.
    expect(c.resourceMetrics.scopeMetrics[0]!.metrics.map((m) => m.descriptor)).toEqual([
      { name: 'istio_requests_total', description: 'Requests, by Istio standard labels', unit: '', valueType: 1 },
      { name: 'istio_request_duration_milliseconds', description: 'Request duration', unit: 'ms', valueType: 1 },
      { name: 'istio_request_bytes', description: 'Request body size', unit: 'By', valueType: 1 },
      { name: 'istio_response_bytes', description: 'Response body size', unit: 'By', valueType: 1 },
    ]);

    const requests = metric(c, 'istio_requests_total')!;
    expect(requests).toMatchObject({ aggregationTemporality: AGGREGATION_TEMPORALITY.CUMULATIVE, dataPointType: DATA_POINT_TYPE.SUM, isMonotonic: true });
    expect(AGGREGATION_TEMPORALITY.CUMULATIVE).toBe(1);
    expect(DATA_POINT_TYPE.SUM).toBe(3);
    const points = requests.dataPoints;
    expect(points.map((d) => [d.attributes['response_code'], d.attributes['response_flags'], d.value])).toEqual([
      ['200', '-', 2],
      ['503', 'UO', 1],
    ]);
    // Start: when the aggregation was switched on; end: the collection.
    expect(points[0]!.startTime).toEqual([1_700_000_000, 250_000_000]);
    expect(points[0]!.endTime).toEqual([1_700_000_009, 500_500_000]);
    expect(Object.keys(points[0]!.attributes)).toHaveLength(25);

    const duration = metric(c, 'istio_request_duration_milliseconds')!;
    expect(duration.dataPointType).toBe(DATA_POINT_TYPE.HISTOGRAM);
    expect(DATA_POINT_TYPE.HISTOGRAM).toBe(0);
    const ok = duration.dataPoints[0]!.value as ProducedHistogram;
    const counts = new Array<number>(ENVOY_DEFAULT_BUCKETS.length + 1).fill(0);
    // Whole milliseconds, truncated, as Istio records them: 1.9 ms is 1 (le 1, not le 5).
    counts[ENVOY_DEFAULT_BUCKETS.indexOf(1)] = 1;
    counts[ENVOY_DEFAULT_BUCKETS.indexOf(50)] = 1; // 30 ms: le 50
    expect(ok).toEqual({ buckets: { boundaries: [...ENVOY_DEFAULT_BUCKETS], counts }, sum: 31, count: 2, min: 1, max: 30 });
    const response = metric(c, 'istio_response_bytes')!.dataPoints[0]!.value as ProducedHistogram;
    expect(response).toMatchObject({ sum: 7040, count: 2, min: 40, max: 7000 });
    expect(response.buckets.counts[ENVOY_DEFAULT_BUCKETS.indexOf(50)]).toBe(1);
    expect(response.buckets.counts[ENVOY_DEFAULT_BUCKETS.indexOf(10000)]).toBe(1);

    // Cumulative: a later collection counts on from the same start.
    call({ status: 200, ms: 1 });
    const later = await p.collect();
    const again = metric(later, 'istio_requests_total')!.dataPoints;
    expect(again[0]!.value).toBe(3);
    expect(again[0]!.startTime).toEqual([1_700_000_000, 250_000_000]);
  });

  it('counts gRPC messages for gRPC label sets only', async () => {
    const { t, call } = setup();
    const p = t.metricProducer();
    call({ status: 200, ms: 1 });
    call({ status: 200, ms: 1, grpc: 0 });
    call({ status: 200, ms: 1, grpc: 14 });
    const c = await p.collect();
    for (const [name, value] of [['istio_request_messages_total', 2], ['istio_response_messages_total', 5]] as const) {
      const m = metric(c, name)!;
      expect(m).toMatchObject({ dataPointType: DATA_POINT_TYPE.SUM, isMonotonic: true, descriptor: { unit: '' } });
      expect(m.dataPoints.map((d) => [d.attributes['request_protocol'], d.attributes['grpc_response_status'], d.value])).toEqual([
        ['grpc', '0', value],
        ['grpc', '14', value],
      ]);
    }
    expect(metric(c, 'istio_requests_total')!.dataPoints).toHaveLength(3);
  });

  it('leaves out disabled metrics, also when they are disabled later', async () => {
    const { t, call } = setup({ disabledMetrics: ['istio_request_bytes', 'istio_request_messages_total'] });
    const p = t.metricProducer();
    call({ status: 200, ms: 1, grpc: 0 });
    const names = async () => (await p.collect()).resourceMetrics.scopeMetrics[0]!.metrics.map((m) => m.descriptor.name);
    expect(await names()).toEqual(['istio_requests_total', 'istio_response_messages_total', 'istio_request_duration_milliseconds', 'istio_response_bytes']);
    t.configure({ disabledMetrics: ['istio_response_bytes'] });
    expect(await names()).toEqual([
      'istio_requests_total',
      'istio_request_messages_total',
      'istio_response_messages_total',
      'istio_request_duration_milliseconds',
      'istio_request_bytes',
    ]);
  });

  it('keeps an aggregation that was already on, its data and its start; and keeps it on', async () => {
    const { t, call, setWall } = setup({ prometheus: true });
    call({ status: 200, ms: 1 });
    setWall(1_800_000_000_000);
    const p = t.metricProducer();
    call({ status: 200, ms: 1 });
    const points = metric(await p.collect(), 'istio_requests_total')!.dataPoints;
    expect(points.map((d) => d.value)).toEqual([2]);
    expect(points[0]!.startTime).toEqual([1_700_000_000, 250_000_000]);
    t.configure({ prometheus: false });
    call({ status: 200, ms: 1 });
    expect(metric(await p.collect(), 'istio_requests_total')!.dataPoints.map((d) => d.value)).toEqual([3]);
    expect(t.prometheusText()).toBeDefined();
  });

  it('writes HrTime as [seconds, nanoseconds]', () => {
    expect(hrTimeFromMs(0)).toEqual([0, 0]);
    expect(hrTimeFromMs(1_234.5)).toEqual([1, 234_500_000]);
    expect(hrTimeFromMs(1_999.9999999999)).toEqual([1, 999_999_999]);
  });
});
