// What a call reports: Istio's standard metrics (through the OpenTelemetry API, and
// optionally an in-process Prometheus aggregation), a span per call with one child per
// upstream attempt, trace headers for the upstream, and an access log line. One
// MeshTelemetry per Mesh; one CallRecorder per call, handed out only when something
// listens, so a process with no MeterProvider, TracerProvider, access log or aggregation
// pays one branch per call.
//
// Order on the request path (client, reporter="source"):
//   startCall → route(cluster) → [attempt(host) → injectHeaders(set) → receivedHeaders(get)]+ → bytes → end(result)
// A server (reporter="destination") calls startCall → injectHeaders(set on the response) → withContext(handler) → bytes → end.
import type {
  Attributes,
  Context,
  MeterProvider,
  Span,
  SpanContext,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';
import { performance } from 'node:perf_hooks';
import { MeshletError, type ClusterResource, type Metadata, type NodeConfig } from '@meshlet/xds-client';
import type { RequestHeaders } from '../request.js';
import { formatAccessLogLine, type AccessLogSink } from './access-log.js';
import { localWorkload, UNKNOWN, type WorkloadLabels } from './istio-labels.js';
import {
  createIstioInstruments,
  ENVOY_DEFAULT_BUCKETS,
  ISTIO_METRIC_NAMES,
  METER_NAME,
  type IstioInstruments,
  type IstioMetricName,
} from './istio-metrics.js';
import { SeriesStore, type PeerEntry, type ServiceEntry } from './istio-series.js';
import { createIstioMetricProducer, type IstioMetricProducer } from './metric-producer.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, peerMetadataHeaders, type PeerMetadataHeaders } from './peer-metadata.js';
import { PrometheusData, renderPrometheusText } from './prometheus-text.js';
import { otel, otelGlobalsRegistered } from './otel.js';
import { DEFAULT_PROPAGATION, extractSpanContext, injectSpanContext, type HeaderSetter, type TracePropagationFormat } from './trace-context.js';

export interface TelemetryOptions {
  /** Record metrics here instead of on the global MeterProvider (`otel().metrics.getMeterProvider()`). */
  readonly meterProvider?: MeterProvider;
  /** Trace with this provider instead of the global one (`otel().trace.getTracerProvider()`). */
  readonly tracerProvider?: TracerProvider;
  /** Write one JSON line per call here (off by default). */
  readonly accessLog?: AccessLogSink;
  /**
   * Aggregate Istio's metrics in process for `prometheusText()` (an admin endpoint's
   * /stats/prometheus), independently of any MeterProvider. Off by default; always on once
   * `metricProducer()` was called (switching it off then is ignored).
   */
  readonly prometheus?: boolean;
  /** Trace header formats written on outbound calls and read on inbound ones. Default ['tracecontext']. */
  readonly propagation?: readonly TracePropagationFormat[];
  /**
   * Istio's metadata exchange: send this workload's metadata in `x-envoy-peer-metadata`
   * headers on calls routed into the mesh (and answer a caller that sent them), and read the
   * peer's, so both sides know each other's workload (as Envoy sidecars do). Default true.
   */
  readonly metadataExchange?: boolean;
  /**
   * Istio metrics not to record, as Istio's Telemetry API `disabled` overrides do; e.g. the
   * two size histograms, which cost an SDK as much as the duration histogram does.
   */
  readonly disabledMetrics?: readonly IstioMetricName[];
  /** Monotonic milliseconds for durations (default `performance.now`); inject in tests. */
  readonly now?: () => number;
  /** Wall-clock milliseconds for start times (default `Date.now`). */
  readonly wallClock?: () => number;
}

export interface MeshTelemetryOptions extends TelemetryOptions {
  /** The bootstrap node: this process's workload (source_* for clients, destination_* for servers). */
  readonly node?: NodeConfig;
}

export interface CallInfo {
  /** "source" for a call this process makes, "destination" for one its server takes. */
  readonly reporter: 'source' | 'destination';
  readonly protocol: 'http' | 'grpc';
  /** Upper-case method. */
  readonly method?: string;
  /** Path with query (for spans and the access log only: never a metric label). */
  readonly path?: string;
  /** host[:port] of the call: the fallback destination service. */
  readonly authority: string;
  /** Wall-clock start (ms since the epoch), when the caller already read the clock. */
  readonly startTimeMs?: number;
  /** Request headers: incoming trace context (servers), user-agent, x-request-id, x-forwarded-for (access log). */
  readonly headers?: RequestHeaders;
}

/** An upstream host: its `host:port` key, and the endpoint's metadata when there is one (a core PickedHost fits). */
export interface UpstreamHostInfo {
  readonly key: string;
  readonly endpoint?: { readonly metadata?: Metadata | undefined };
}

export interface CallResult {
  /** HTTP status of the response the caller got (a local reply's too); 0 when there was none. */
  readonly status: number;
  /** Envoy response flags, e.g. 'UO' or 'URX,UF'; '-' or omitted when none. */
  readonly flags?: string;
  /** gRPC status code, for gRPC calls. */
  readonly grpcStatus?: number;
  /** Default: 'unknown' for a client (as Istio's client side reports), 'none' for a server. */
  readonly securityPolicy?: 'mutual_tls' | 'none' | 'unknown';
  /** This side's SPIFFE id when the connection used mTLS. */
  readonly localPrincipal?: string;
  /** The other side's SPIFFE id when the connection used mTLS. */
  readonly peerPrincipal?: string;
}

export interface CallRecorder {
  /** The cluster the call was routed to (its metadata names the destination service). */
  route(cluster: ClusterResource | string | undefined): void;
  /** An upstream attempt begins on this host (counts attempts; a child span per attempt). */
  attempt(host: string | UpstreamHostInfo): void;
  /**
   * The current attempt is over (optional): its span ends with this outcome. Without it, an
   * attempt's span ends when the next attempt begins or the call ends.
   */
  attemptEnd(result: { readonly status: number; readonly flags?: string }): void;
  /** Write trace headers for the current attempt (or the call, before any attempt). */
  injectTraceHeaders(set: HeaderSetter): void;
  /**
   * Write every header the call adds: for a call out, the trace headers of the current attempt
   * and, when the call is routed to a mesh cluster, Istio's peer metadata headers; for a
   * request in, the peer metadata response headers when the caller sent its own.
   */
  injectHeaders(set: HeaderSetter): void;
  /** injectHeaders into a header record (names lower-case), as a client's request path holds them. */
  injectHeadersInto(headers: Record<string, string | string[]>): void;
  /** A call out: the response's headers, as a lookup function or an object with get() (the server's peer metadata names the destination workload). */
  receivedHeaders(headers: ((name: string) => string | undefined) | { get(name: string): string | undefined }): void;
  /** Add request body bytes sent (client) or received (server). */
  requestBytes(n: number): void;
  /** Add response body bytes received (client) or sent (server). */
  responseBytes(n: number): void;
  /** Add gRPC messages: `sent` by the client, `received` from the server. */
  messages(sent: number, received: number): void;
  /** Run `fn` with the call's span as the active span (a server runs its handler so). */
  withContext<T>(fn: () => T): T;
  /**
   * Bind a function or an EventEmitter (a server's request and response) to the call's span,
   * so listeners that run later (a request's 'data' and 'end') see it active. Returns `target`
   * unchanged when the call is not traced.
   */
  bind<T>(target: T): T;
  /** The call is over: record it. Later calls are ignored. */
  end(result: CallResult): void;
}

/** Options are checked where they are given: a misspelt metric name would silently disable nothing. */
function disabledSet(names: readonly string[] | undefined): ReadonlySet<string> {
  for (const n of names ?? []) {
    if (!(ISTIO_METRIC_NAMES as readonly string[]).includes(n)) {
      throw new MeshletError('MESHLET_INVALID_OPTION', `telemetry.disabledMetrics: "${n}" is not one of ${ISTIO_METRIC_NAMES.join(', ')}`);
    }
  }
  return new Set(names ?? []);
}

/** The global providers are looked at again every this many calls (and on every config change). */
const RECHECK_EVERY = 1024;

// perf_hooks' own object: the global `performance` is a lazy getter on Node 20, run on every read.
const defaultNow = (): number => performance.now();

export class MeshTelemetry {
  #options: TelemetryOptions;
  readonly #local: WorkloadLabels;
  readonly #store: SeriesStore;
  #instruments: IstioInstruments | undefined;
  #tracer: Tracer | undefined;
  #tracerSource: TracerProvider | undefined;
  #prometheus = false;
  /** Wall-clock ms when the aggregation was switched on: the start of its cumulative points. */
  #aggregationStartMs = 0;
  #producer: IstioMetricProducer | undefined;
  #disabled: ReadonlySet<string> = new Set();
  #propagation: readonly TracePropagationFormat[];
  /** This workload's metadata exchange headers (undefined without a node, or when switched off). */
  readonly #exchangeHeaders: PeerMetadataHeaders | undefined;
  #exchange: PeerMetadataHeaders | undefined;
  #active = false;
  /** Whether a context manager is registered (without one, no call runs inside a span's context). */
  #contexts = false;
  #countdown = RECHECK_EVERY;
  /** @internal */ readonly now: () => number;
  /** @internal */ readonly wallClock: () => number;

  constructor(options: MeshTelemetryOptions = {}) {
    this.#local = localWorkload(options.node);
    this.#store = new SeriesStore(this.#local);
    this.now = options.now ?? defaultNow;
    this.wallClock = options.wallClock ?? Date.now;
    this.#options = options;
    this.#propagation = options.propagation ?? DEFAULT_PROPAGATION;
    this.#setAggregation(options.prometheus === true);
    this.#disabled = disabledSet(options.disabledMetrics);
    this.#exchangeHeaders = peerMetadataHeaders(options.node, this.#local);
    this.#exchange = options.metadataExchange === false ? undefined : this.#exchangeHeaders;
    this.refresh();
  }

  /** @internal The metadata exchange headers to send, when the exchange is on. */
  get exchange(): PeerMetadataHeaders | undefined {
    return this.#exchange;
  }

  /** This process's workload labels (from the bootstrap node). */
  get localWorkload(): WorkloadLabels {
    return this.#local;
  }

  /** Whether a call would be recorded now (some provider, access log or aggregation listens). */
  get active(): boolean {
    return this.#active;
  }

  /** The trace header formats in use. */
  get propagation(): readonly TracePropagationFormat[] {
    return this.#propagation;
  }

  /**
   * Change options after the mesh was made (e.g. on the process-wide mesh):
   * `getDefaultMesh().telemetry.configure({ accessLog: process.stdout })`. Given keys replace
   * the old ones; switching `prometheus` on starts the aggregation from zero.
   */
  configure(options: TelemetryOptions): void {
    this.#options = { ...this.#options, ...options };
    if ('propagation' in options) this.#propagation = options.propagation ?? DEFAULT_PROPAGATION;
    if ('metadataExchange' in options) this.#exchange = options.metadataExchange === false ? undefined : this.#exchangeHeaders;
    if ('disabledMetrics' in options) {
      this.#disabled = disabledSet(options.disabledMetrics);
      // The instruments are made again without (or with) the disabled ones.
      this.#instruments?.close();
      this.#instruments = undefined;
    }
    // The producer reads the aggregation: while there is one, it stays on (and keeps its data).
    if ('prometheus' in options && !this.#producer) this.#setAggregation(options.prometheus === true);
    this.refresh();
  }

  /**
   * Look at the MeterProvider and TracerProvider again. The mesh calls it whenever a target's
   * config changes, and startCall every 1024th call, so a provider the application registers
   * after the mesh was made is picked up without a per-call check.
   */
  refresh(): void {
    // Nothing registered with the OpenTelemetry API and no provider given: the API's globals
    // are its no-ops, so there is nothing to look up, nor any reason to load the API.
    const useApi = this.#options.meterProvider !== undefined || this.#options.tracerProvider !== undefined || otelGlobalsRegistered();
    if (this.#producer) {
      // The producer reports the metrics: instruments too would export every series twice
      // from a provider that is both the producer's reader's and the one meshlet records on.
      this.#instruments?.close();
      this.#instruments = undefined;
    } else if (!useApi) {
      this.#instruments?.close();
      this.#instruments = undefined;
    } else {
      const mp = this.#options.meterProvider ?? otel().metrics.getMeterProvider();
      if (mp !== this.#instruments?.provider) {
        this.#instruments?.close();
        this.#instruments = createIstioInstruments(mp, () => this.#store.all(), this.#disabled);
        // A new provider counts from zero.
        if (this.#instruments) for (const s of this.#store.all()) s.otelRequests = s.otelRequestMessages = s.otelResponseMessages = 0;
      }
    }
    const tp = useApi ? (this.#options.tracerProvider ?? otel().trace.getTracerProvider()) : undefined;
    if (tp === undefined) {
      this.#tracerSource = undefined;
      this.#tracer = undefined;
    } else if (tp !== this.#tracerSource || this.#tracer === undefined) {
      this.#tracerSource = tp;
      // The global provider is a proxy that hands out no-op tracers until a real provider is
      // set: ask for its delegate's tracer, which is undefined while there is none.
      this.#tracer = tp instanceof otel().ProxyTracerProvider ? tp.getDelegateTracer(METER_NAME) : tp.getTracer(METER_NAME);
    }
    this.#active = this.#instruments !== undefined || this.#tracer !== undefined || this.#prometheus || this.#options.accessLog !== undefined;
    this.#contexts = hasContextManager();
    this.#countdown = RECHECK_EVERY;
  }

  /** @internal Whether an active context can hold a span (some context manager is registered). */
  get contexts(): boolean {
    return this.#contexts;
  }

  /**
   * Whether startCall would record a call now. A caller on the request path asks this first
   * and builds the CallInfo only when the answer is yes; a call it answers no for counts
   * towards the periodic refresh, as startCall's calls do.
   */
  wantsCalls(): boolean {
    // While active, the startCall that follows counts the call: one decrement per call either way.
    if (this.#active) return true;
    if (--this.#countdown <= 0) this.refresh();
    return this.#active;
  }

  /** A recorder for one call, or undefined when nothing listens. */
  startCall(info: CallInfo): CallRecorder | undefined {
    // Every 1024th call looks for providers registered (or replaced) since: a decrement per call.
    if (--this.#countdown <= 0) this.refresh();
    return this.#active ? new Call(this, info, this.#tracer) : undefined;
  }

  /**
   * Istio's metrics as an OpenTelemetry SDK `MetricProducer`, for any MetricReader:
   * `new PrometheusExporter({ metricProducers: [mesh.telemetry.metricProducer()] })`.
   * The metrics then come from the in-process aggregation (switched on here as `prometheus:
   * true` does; data it already has are kept), at its per-call cost rather than the SDK's.
   * From this call on, meshlet no longer records Istio's metrics through the OpenTelemetry
   * API instruments (they are closed, on any MeterProvider), so a provider that is also
   * registered globally or given as `meterProvider` does not export every series twice;
   * what it recorded before stays in it. Tracing is unaffected. Every call returns the same
   * producer.
   */
  metricProducer(): IstioMetricProducer {
    if (!this.#producer) {
      this.#setAggregation(true);
      this.#producer = createIstioMetricProducer({
        series: () => this.#store.all(),
        disabled: () => this.#disabled,
        startTimeMs: () => this.#aggregationStartMs,
        nowMs: () => this.wallClock(),
      });
      this.refresh();
    }
    return this.#producer;
  }

  /** Switch the in-process aggregation on (counting from zero, from now) or off; no change keeps its data. */
  #setAggregation(on: boolean): void {
    if (on === this.#prometheus) return;
    this.#prometheus = on;
    for (const s of this.#store.all()) s.prom = undefined;
    if (on) this.#aggregationStartMs = this.wallClock();
  }

  /** Istio's metrics in Prometheus text format, when the in-process aggregation is on. */
  prometheusText(): string | undefined {
    return this.#prometheus ? renderPrometheusText(this.#store.all(), this.#disabled) : undefined;
  }

  /** @internal */
  get accessLog(): AccessLogSink | undefined {
    return this.#options.accessLog;
  }

  /** @internal */
  get store(): SeriesStore {
    return this.#store;
  }

  /** @internal A server with no authority stands for the local workload's canonical service. */
  localServiceAuthority(): string {
    const c = this.#local.canonicalService;
    return c === UNKNOWN ? '' : c;
  }

  /** @internal Record a finished call's metrics. */
  record(call: Call, result: CallResult, flags: string, elapsedMs: number): void {
    const instruments = this.#instruments;
    if (!instruments && !this.#prometheus) return;
    // Istio records whole milliseconds, truncated: istio_stats divides the stream's duration
    // by absl::Milliseconds(1), an integer division (istio/proxy istio_stats.cc, log()).
    const durationMs = Math.floor(elapsedMs);
    const s = this.#store.series(call.reporter, call.protocol, call.serviceEntry(), call.peer, result, flags);
    if (instruments) {
      const attrs = s.attrs;
      s.otelRequests++;
      instruments.duration?.record(durationMs, attrs);
      instruments.requestBytes?.record(call.requestBytesTotal, attrs);
      instruments.responseBytes?.record(call.responseBytesTotal, attrs);
      if (s.grpc) {
        s.otelRequestMessages += call.messagesSent;
        s.otelResponseMessages += call.messagesReceived;
      }
    }
    if (this.#prometheus) {
      const p = (s.prom ??= new PrometheusData(ENVOY_DEFAULT_BUCKETS));
      p.requests++;
      p.duration.record(durationMs);
      p.requestBytes.record(call.requestBytesTotal);
      p.responseBytes.record(call.responseBytesTotal);
      if (s.grpc) {
        p.requestMessages += call.messagesSent;
        p.responseMessages += call.messagesReceived;
      }
    }
  }
}

class Call implements CallRecorder {
  readonly #t: MeshTelemetry;
  readonly #tracer: Tracer | undefined;
  readonly reporter: 'source' | 'destination';
  readonly protocol: 'http' | 'grpc';
  readonly #info: CallInfo;
  /** Undefined unless an access log listened when the call started. */
  readonly #startWall: number | undefined;
  readonly #startMono: number;
  #cluster: ClusterResource | string | undefined;
  #service: ServiceEntry | undefined;
  peer: PeerEntry | null = null;
  /** A server answers the metadata exchange only to a caller that started it (Istio's rule). */
  #answerExchange = false;
  #host: string | undefined;
  #attempts = 0;
  requestBytesTotal = 0;
  responseBytesTotal = 0;
  messagesSent = 0;
  messagesReceived = 0;
  #span: Span | undefined;
  #spanCtx: Context | undefined;
  #attemptSpan: Span | undefined;
  #ended = false;

  constructor(t: MeshTelemetry, info: CallInfo, tracer: Tracer | undefined) {
    this.#t = t;
    this.#info = info;
    this.reporter = info.reporter;
    this.protocol = info.protocol;
    this.#startMono = t.now();
    // The wall clock is read only for the access log (a span reads its own).
    this.#startWall = info.startTimeMs ?? (t.accessLog !== undefined ? t.wallClock() : undefined);
    this.#tracer = tracer;
    if (info.reporter === 'destination' && info.headers) {
      // A caller that speaks Istio's metadata exchange names its workload.
      const mx = info.headers.get(PEER_METADATA_HEADER);
      if (mx) {
        this.peer = t.store.peerFromExchange(mx);
        this.#answerExchange = true;
      }
    }
    if (tracer) this.#startSpan(tracer);
  }

  #startSpan(tracer: Tracer): void {
    const info = this.#info;
    const api = otel();
    let parent = api.context.active();
    const server = info.reporter === 'destination';
    if (server && info.headers) {
      const remote = extractSpanContext(info.headers, this.#t.propagation);
      if (remote) parent = api.trace.setSpanContext(parent, remote);
    }
    const attributes: Attributes = { 'server.address': info.authority };
    if (info.method) attributes['http.request.method'] = info.method;
    if (info.path) attributes['url.path'] = info.path;
    const kind = server ? api.SpanKind.SERVER : api.SpanKind.CLIENT;
    const options = info.startTimeMs !== undefined ? { kind, attributes, startTime: info.startTimeMs } : { kind, attributes };
    this.#span = tracer.startSpan(spanName(info), options, parent);
    this.#spanCtx = api.trace.setSpan(parent, this.#span);
  }

  route(cluster: ClusterResource | string | undefined): void {
    this.#cluster = cluster;
    this.#service = undefined;
  }

  attempt(host: string | UpstreamHostInfo): void {
    this.#attempts++;
    if (typeof host === 'string') {
      this.#host = host;
      this.peer = null;
    } else {
      this.#host = host.key;
      this.peer = this.#t.store.peer(host.endpoint?.metadata);
    }
    if (this.#tracer && this.#spanCtx) {
      this.#attemptSpan?.end();
      const attributes: Attributes = { 'server.address': this.#host, 'meshlet.attempt': this.#attempts };
      if (this.#attempts > 1) attributes['http.request.resend_count'] = this.#attempts - 1;
      if (this.#info.method) attributes['http.request.method'] = this.#info.method;
      this.#attemptSpan = this.#tracer.startSpan(spanName(this.#info), { kind: otel().SpanKind.CLIENT, attributes }, this.#spanCtx);
    }
  }

  attemptEnd(result: { readonly status: number; readonly flags?: string }): void {
    const span = this.#attemptSpan;
    if (!span) return;
    this.#attemptSpan = undefined;
    const flags = result.flags || '-';
    if (result.status) span.setAttribute('http.response.status_code', result.status);
    span.setAttribute('response_flags', flags);
    if (result.status === 0 || result.status >= 400) span.setStatus({ code: otel().SpanStatusCode.ERROR, ...(flags === '-' ? {} : { message: flags }) });
    span.end();
  }

  injectHeaders(set: HeaderSetter): void {
    if (this.reporter === 'destination') {
      const mx = this.#t.exchange;
      if (mx && this.#answerExchange) {
        set(PEER_METADATA_ID_HEADER, mx.id);
        set(PEER_METADATA_HEADER, mx.value);
      }
      return;
    }
    this.injectTraceHeaders(set);
    const out = this.#exchangeOut();
    if (out) {
      set(PEER_METADATA_ID_HEADER, out.id);
      set(PEER_METADATA_HEADER, out.value);
    }
  }

  /** The exchange headers a call out sends: only to a cluster of the mesh, and when the exchange is on. */
  #exchangeOut(): PeerMetadataHeaders | undefined {
    const mx = this.#t.exchange;
    return mx && exchangeAllowed(this.#cluster) ? mx : undefined;
  }

  injectHeadersInto(headers: Record<string, string | string[]>): void {
    if (this.reporter === 'destination') {
      this.injectHeaders((name, value) => (headers[name] = value));
      return;
    }
    // A client's call (the request path's case): no closure unless there are trace headers.
    const sc = this.#spanContext();
    if (sc) injectSpanContext(sc, this.#t.propagation, (name, value) => (headers[name] = value));
    const out = this.#exchangeOut();
    if (out) {
      headers[PEER_METADATA_ID_HEADER] = out.id;
      headers[PEER_METADATA_HEADER] = out.value;
    }
  }

  receivedHeaders(headers: ((name: string) => string | undefined) | { get(name: string): string | undefined }): void {
    if (this.reporter !== 'source') return;
    const mx = typeof headers === 'function' ? headers(PEER_METADATA_HEADER) : headers.get(PEER_METADATA_HEADER);
    if (mx) {
      const peer = this.#t.store.peerFromExchange(mx);
      if (peer) this.peer = peer;
    }
  }

  injectTraceHeaders(set: HeaderSetter): void {
    const sc = this.#spanContext();
    if (sc) injectSpanContext(sc, this.#t.propagation, set);
  }

  /** The span context trace headers carry: the attempt's or the call's span, else the application's active one. */
  #spanContext(): SpanContext | undefined {
    const span = this.#attemptSpan ?? this.#span;
    if (span !== undefined) return span.spanContext();
    // Not traced by meshlet: the application's own active span, if it can have one.
    return this.#t.contexts ? otel().trace.getSpanContext(otel().context.active()) : undefined;
  }

  requestBytes(n: number): void {
    this.requestBytesTotal += n;
  }

  responseBytes(n: number): void {
    this.responseBytesTotal += n;
  }

  messages(sent: number, received: number): void {
    this.messagesSent += sent;
    this.messagesReceived += received;
  }

  withContext<T>(fn: () => T): T {
    return this.#spanCtx ? otel().context.with(this.#spanCtx, fn) : fn();
  }

  bind<T>(target: T): T {
    return this.#spanCtx ? otel().context.bind(this.#spanCtx, target) : target;
  }

  /** @internal */
  serviceEntry(): ServiceEntry {
    if (!this.#service) {
      const authority = this.#info.authority || (this.reporter === 'destination' ? this.#t.localServiceAuthority() : '');
      this.#service = this.#t.store.service(this.#cluster, authority);
    }
    return this.#service;
  }

  end(result: CallResult): void {
    if (this.#ended) return;
    this.#ended = true;
    const durationMs = Math.max(0, this.#t.now() - this.#startMono);
    const flags = result.flags || '-';
    this.#t.record(this, result, flags, durationMs);
    if (this.#span) this.#endSpans(result, flags);
    const sink = this.#t.accessLog;
    if (sink) {
      const info = this.#info;
      const h = info.headers;
      try {
        sink.write(
          formatAccessLogLine({
            // A log switched on while the call was in flight: its start, from its duration.
            startTimeMs: this.#startWall ?? this.#t.wallClock() - durationMs,
            reporter: this.reporter,
            method: info.method,
            path: info.path,
            responseCode: result.status,
            responseFlags: flags,
            grpcStatus: this.protocol === 'grpc' ? result.grpcStatus : undefined,
            bytesReceived: this.requestBytesTotal,
            bytesSent: this.responseBytesTotal,
            durationMs,
            authority: info.authority,
            upstreamHost: this.#host,
            upstreamCluster: clusterName(this.#cluster),
            attempts: this.#attempts,
            xForwardedFor: h?.get('x-forwarded-for'),
            userAgent: h?.get('user-agent'),
            requestId: h?.get('x-request-id'),
            traceId: this.#span?.spanContext().traceId,
          }),
        );
      } catch {
        // A broken log stream must not fail the call it describes.
      }
    }
  }

  #endSpans(result: CallResult, flags: string): void {
    const span = this.#span!;
    const failed = result.status === 0 || result.status >= (this.reporter === 'source' ? 400 : 500) || (result.grpcStatus ?? 0) !== 0;
    const attrs: Attributes = { 'response_flags': flags };
    if (result.status) attrs['http.response.status_code'] = result.status;
    if (result.grpcStatus !== undefined) attrs['rpc.grpc.status_code'] = result.grpcStatus;
    const cluster = clusterName(this.#cluster);
    if (cluster) attrs['upstream_cluster'] = cluster;
    if (this.#attempts > 0) attrs['meshlet.attempts'] = this.#attempts;
    const status = failed ? { code: otel().SpanStatusCode.ERROR, ...(flags === '-' ? {} : { message: flags }) } : undefined;
    if (this.#attemptSpan) {
      this.#attemptSpan.setAttributes(attrs);
      if (status) this.#attemptSpan.setStatus(status);
      this.#attemptSpan.end();
      this.#attemptSpan = undefined;
    }
    span.setAttributes(attrs);
    if (status) span.setStatus(status);
    span.end();
  }
}

let probe: { readonly key: symbol; readonly context: Context } | undefined;

/**
 * Whether the API has a context manager: the no-op one (the API's default) returns the root
 * context even inside context.with(). Checked on refresh (every 1024 calls and on config
 * changes), so a call that meshlet does not trace skips the API's global lookup when no
 * context manager could hold the application's span.
 */
function hasContextManager(): boolean {
  if (!otelGlobalsRegistered()) return false;
  const { context, createContextKey, ROOT_CONTEXT } = otel();
  if (probe === undefined) {
    const key = createContextKey('meshlet.context-probe');
    probe = { key, context: ROOT_CONTEXT.setValue(key, true) };
  }
  const { key, context: probeContext } = probe;
  // The value, not the object: a manager may hand back a copy of the context it was given.
  return context.with(probeContext, () => context.active().getValue(key) === true);
}

function spanName(info: CallInfo): string {
  // OTel semantic conventions: an RPC span is named by its method path, an HTTP span by its method.
  if (info.protocol === 'grpc' && info.path) return info.path.startsWith('/') ? info.path.slice(1) : info.path;
  return info.method ?? 'HTTP';
}

/**
 * Peer metadata goes only to clusters of the mesh: not when the call was not routed (a
 * passthrough), nor to a cluster whose Istio metadata marks it external or disables the
 * exchange (istio/proxy peer_metadata's skip rules).
 */
function exchangeAllowed(c: ClusterResource | string | undefined): boolean {
  if (c === undefined || c === 'PassthroughCluster') return false;
  if (typeof c === 'string') return true;
  const istio = c.metadata?.filterMetadata['istio'];
  return !(istio && (istio['external'] === true || istio['disable_mx'] === true));
}

function clusterName(c: ClusterResource | string | undefined): string | undefined {
  return c === undefined ? undefined : typeof c === 'string' ? c : c.name;
}
