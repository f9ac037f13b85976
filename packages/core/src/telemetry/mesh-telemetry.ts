// What a call reports: Istio's standard metrics (through the OpenTelemetry API, and
// optionally an in-process Prometheus aggregation), a span per call with one child per
// upstream attempt, trace headers for the upstream, and an access log line. One
// MeshTelemetry per Mesh; one CallRecorder per call, handed out only when something
// listens, so a process with no MeterProvider, TracerProvider, access log or aggregation
// pays one branch per call.
//
// Order on the request path (client, reporter="source"):
//   startCall → route(cluster) → [attempt(host) → injectTraceHeaders(set)]+ → bytes → end(result)
// A server (reporter="destination") calls startCall → withContext(handler) → bytes → end.
import {
  context,
  metrics,
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type MeterProvider,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { ClusterResource, Metadata, NodeConfig } from '@meshlet/xds-client';
import type { RequestHeaders } from '../request.js';
import { formatAccessLogLine, type AccessLogSink } from './access-log.js';
import {
  endpointWorkload,
  istioLabels,
  localWorkload,
  serviceFromAuthority,
  serviceFromCluster,
  UNKNOWN,
  type IstioLabels,
  type ServiceLabels,
  type WorkloadLabels,
} from './istio-labels.js';
import { createIstioInstruments, METER_NAME, type IstioInstruments } from './istio-metrics.js';
import { PrometheusAggregator, type PrometheusSeries } from './prometheus-text.js';
import { DEFAULT_PROPAGATION, extractSpanContext, injectSpanContext, type HeaderSetter, type TracePropagationFormat } from './trace-context.js';

export interface TelemetryOptions {
  /** Record metrics here instead of on the global MeterProvider (`metrics.getMeterProvider()`). */
  readonly meterProvider?: MeterProvider;
  /** Trace with this provider instead of the global one (`trace.getTracerProvider()`). */
  readonly tracerProvider?: TracerProvider;
  /** Write one JSON line per call here (off by default). */
  readonly accessLog?: AccessLogSink;
  /**
   * Aggregate Istio's metrics in process for `prometheusText()` (an admin endpoint's
   * /stats/prometheus), independently of any MeterProvider. Off by default.
   */
  readonly prometheus?: boolean;
  /** Trace header formats written on outbound calls and read on inbound ones. Default ['tracecontext']. */
  readonly propagation?: readonly TracePropagationFormat[];
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
  /** Write trace headers for the current attempt (or the call, before any attempt). */
  injectTraceHeaders(set: HeaderSetter): void;
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

/** While nothing listens, the global providers are looked at again every this many calls. */
const RECHECK_EVERY = 1024;
/** Bounds of the label-set caches: past them new label sets still record, uncached. */
const MAX_SERIES = 4096;
const MAX_SERVICES = 1024;

interface KeyedService extends ServiceLabels {
  readonly key: string;
}
interface KeyedWorkload extends WorkloadLabels {
  readonly key: string;
}
interface SeriesEntry {
  readonly attrs: IstioLabels;
  readonly prom: PrometheusSeries | undefined;
}

function keyed<T extends object>(labels: T, key: string): T & { readonly key: string } {
  return Object.freeze({ ...labels, key });
}

function serviceKey(s: ServiceLabels): string {
  return `${s.service}\u0001${s.name}\u0001${s.namespace ?? ''}`;
}

const defaultNow = (): number => performance.now();

export class MeshTelemetry {
  #options: TelemetryOptions;
  readonly #local: WorkloadLabels;
  #instruments: IstioInstruments | undefined;
  #tracer: Tracer | undefined;
  #tracerSource: TracerProvider | undefined;
  #prom: PrometheusAggregator | undefined;
  #propagation: readonly TracePropagationFormat[];
  #active = false;
  #countdown = RECHECK_EVERY;
  /** @internal */ readonly now: () => number;
  /** @internal */ readonly wallClock: () => number;
  readonly #series = new Map<string, SeriesEntry>();
  readonly #servicesByCluster = new WeakMap<ClusterResource, KeyedService>();
  readonly #servicesByName = new Map<string, KeyedService>();
  readonly #peers = new Map<string, KeyedWorkload>();

  constructor(options: MeshTelemetryOptions = {}) {
    this.#local = localWorkload(options.node);
    this.now = options.now ?? defaultNow;
    this.wallClock = options.wallClock ?? Date.now;
    this.#options = options;
    this.#propagation = options.propagation ?? DEFAULT_PROPAGATION;
    this.#prom = options.prometheus ? new PrometheusAggregator() : undefined;
    this.refresh();
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
   * the old ones; turning `prometheus` off drops the aggregation.
   */
  configure(options: TelemetryOptions): void {
    this.#options = { ...this.#options, ...options };
    if ('propagation' in options) this.#propagation = options.propagation ?? DEFAULT_PROPAGATION;
    if ('prometheus' in options) {
      if (options.prometheus && !this.#prom) this.#prom = new PrometheusAggregator();
      if (!options.prometheus) this.#prom = undefined;
      this.#series.clear();
    }
    this.refresh();
  }

  /**
   * Look at the MeterProvider and TracerProvider again. The mesh calls it whenever a target's
   * config changes, and startCall every 1024th call while nothing listens, so a provider the
   * application registers after the mesh was made is picked up without a per-call check.
   */
  refresh(): void {
    const mp = this.#options.meterProvider ?? metrics.getMeterProvider();
    if (mp !== this.#instruments?.provider) {
      this.#instruments = createIstioInstruments(mp);
    }
    const tp = this.#options.tracerProvider ?? trace.getTracerProvider();
    if (tp !== this.#tracerSource || this.#tracer === undefined) {
      this.#tracerSource = tp;
      // The global provider is a proxy that hands out no-op tracers until a real provider is
      // set: ask for its delegate's tracer, which is undefined while there is none.
      this.#tracer = tp instanceof ProxyTracerProvider ? tp.getDelegateTracer(METER_NAME) : tp.getTracer(METER_NAME);
    }
    this.#active = this.#instruments !== undefined || this.#tracer !== undefined || this.#prom !== undefined || this.#options.accessLog !== undefined;
    this.#countdown = RECHECK_EVERY;
  }

  /** A recorder for one call, or undefined when nothing listens. */
  startCall(info: CallInfo): CallRecorder | undefined {
    if (!this.#active) {
      if (--this.#countdown > 0) return undefined;
      this.refresh();
      if (!this.#active) return undefined;
    }
    return new Call(this, info, this.#tracer);
  }

  /** Istio's metrics in Prometheus text format, when the in-process aggregation is on. */
  prometheusText(): string | undefined {
    return this.#prom?.text();
  }

  /** @internal */
  get accessLog(): AccessLogSink | undefined {
    return this.#options.accessLog;
  }

  /** @internal */
  service(cluster: ClusterResource | string | undefined, authority: string): KeyedService {
    if (cluster !== undefined && typeof cluster !== 'string') {
      let s = this.#servicesByCluster.get(cluster);
      if (!s) {
        const labels = serviceFromCluster(cluster, authority);
        // A cluster without metadata or an Istio name stands for the authority: not per-cluster.
        s = keyed(labels, serviceKey(labels));
        this.#servicesByCluster.set(cluster, s);
      }
      return s;
    }
    const name = cluster ?? authority;
    let s = this.#servicesByName.get(name);
    if (!s) {
      const labels = cluster !== undefined ? serviceFromCluster(cluster, authority) : serviceFromAuthority(authority);
      s = keyed(labels, serviceKey(labels));
      if (this.#servicesByName.size < MAX_SERVICES) this.#servicesByName.set(name, s);
    }
    return s;
  }

  /** @internal The local workload's canonical service stands for a server's service when no authority is known. */
  localService(): KeyedService {
    const c = this.#local.canonicalService;
    return this.service(undefined, c === UNKNOWN ? '' : c);
  }

  /** @internal */
  peer(metadata: Metadata | undefined): KeyedWorkload | undefined {
    const encoded = metadata?.filterMetadata['istio']?.['workload'];
    if (typeof encoded !== 'string') return undefined;
    let p = this.#peers.get(encoded);
    if (!p) {
      const w = endpointWorkload(metadata);
      if (!w) return undefined;
      p = keyed(w, encoded);
      if (this.#peers.size < MAX_SERVICES) this.#peers.set(encoded, p);
    }
    return p;
  }

  /** @internal Record a finished call's metrics. */
  record(call: Call, result: CallResult, durationMs: number): IstioLabels | undefined {
    const instruments = this.#instruments;
    const prom = this.#prom;
    if (!instruments && !prom) return undefined;
    const entry = this.#seriesFor(call, result);
    const attrs = entry.attrs as unknown as Attributes;
    if (instruments) {
      instruments.requests.add(1, attrs);
      instruments.duration.record(durationMs, attrs);
      instruments.requestBytes.record(call.requestBytesTotal, attrs);
      instruments.responseBytes.record(call.responseBytesTotal, attrs);
      if (call.protocol === 'grpc') {
        instruments.requestMessages.add(call.messagesSent, attrs);
        instruments.responseMessages.add(call.messagesReceived, attrs);
      }
    }
    if (prom && entry.prom) {
      prom.record(entry.prom, {
        durationMs,
        requestBytes: call.requestBytesTotal,
        responseBytes: call.responseBytesTotal,
        requestMessages: call.messagesSent,
        responseMessages: call.messagesReceived,
      });
    }
    return entry.attrs;
  }

  #seriesFor(call: Call, result: CallResult): SeriesEntry {
    const service = call.serviceLabels();
    const peer = call.peerLabels;
    const code = String(result.status);
    const grpc = call.protocol === 'grpc' && result.grpcStatus !== undefined ? String(result.grpcStatus) : '';
    const flags = result.flags || '-';
    const security = result.securityPolicy ?? (call.reporter === 'source' ? 'unknown' : 'none');
    const key = `${call.reporter}\u0000${call.protocol}\u0000${service.key}\u0000${peer?.key ?? ''}\u0000${code}\u0000${grpc}\u0000${flags}\u0000${security}\u0000${result.localPrincipal ?? ''}\u0000${result.peerPrincipal ?? ''}`;
    let entry = this.#series.get(key);
    if (entry) return entry;
    const attrs = Object.freeze(
      istioLabels({
        reporter: call.reporter,
        local: this.#local,
        peer,
        service,
        localPrincipal: result.localPrincipal,
        peerPrincipal: result.peerPrincipal,
        protocol: call.protocol,
        responseCode: code,
        grpcStatus: grpc,
        flags,
        securityPolicy: security,
      }),
    );
    const cacheable = this.#series.size < MAX_SERIES;
    entry = { attrs, prom: cacheable ? this.#prom?.series(attrs, call.protocol === 'grpc') : undefined };
    if (cacheable) this.#series.set(key, entry);
    return entry;
  }
}

class Call implements CallRecorder {
  readonly #t: MeshTelemetry;
  readonly #tracer: Tracer | undefined;
  readonly reporter: 'source' | 'destination';
  readonly protocol: 'http' | 'grpc';
  readonly #info: CallInfo;
  readonly #startWall: number;
  readonly #startMono: number;
  #cluster: ClusterResource | string | undefined;
  #service: KeyedService | undefined;
  peerLabels: KeyedWorkload | undefined;
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
    this.#startWall = info.startTimeMs ?? t.wallClock();
    this.#tracer = tracer;
    if (tracer) this.#startSpan(tracer);
  }

  #startSpan(tracer: Tracer): void {
    const info = this.#info;
    let parent = context.active();
    const server = info.reporter === 'destination';
    if (server && info.headers) {
      const remote = extractSpanContext(info.headers, this.#t.propagation);
      if (remote) parent = trace.setSpanContext(parent, remote);
    }
    const attributes: Attributes = { 'server.address': info.authority };
    if (info.method) attributes['http.request.method'] = info.method;
    if (info.path) attributes[server ? 'url.path' : 'url.full'] = info.path;
    this.#span = tracer.startSpan(spanName(info), { kind: server ? SpanKind.SERVER : SpanKind.CLIENT, attributes, startTime: this.#startWall }, parent);
    this.#spanCtx = trace.setSpan(parent, this.#span);
  }

  route(cluster: ClusterResource | string | undefined): void {
    this.#cluster = cluster;
    this.#service = undefined;
  }

  attempt(host: string | UpstreamHostInfo): void {
    this.#attempts++;
    if (typeof host === 'string') {
      this.#host = host;
      this.peerLabels = undefined;
    } else {
      this.#host = host.key;
      this.peerLabels = this.#t.peer(host.endpoint?.metadata);
    }
    if (this.#tracer && this.#spanCtx) {
      this.#attemptSpan?.end();
      const attributes: Attributes = { 'server.address': this.#host, 'meshlet.attempt': this.#attempts };
      if (this.#attempts > 1) attributes['http.request.resend_count'] = this.#attempts - 1;
      if (this.#info.method) attributes['http.request.method'] = this.#info.method;
      this.#attemptSpan = this.#tracer.startSpan(spanName(this.#info), { kind: SpanKind.CLIENT, attributes }, this.#spanCtx);
    }
  }

  injectTraceHeaders(set: HeaderSetter): void {
    const sc: SpanContext | undefined = (this.#attemptSpan ?? this.#span)?.spanContext() ?? trace.getSpanContext(context.active());
    if (sc) injectSpanContext(sc, this.#t.propagation, set);
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
    return this.#spanCtx ? context.with(this.#spanCtx, fn) : fn();
  }

  bind<T>(target: T): T {
    return this.#spanCtx ? context.bind(this.#spanCtx, target) : target;
  }

  /** @internal */
  serviceLabels(): KeyedService {
    if (!this.#service) {
      const authority = this.#info.authority;
      this.#service = this.reporter === 'destination' && !authority ? this.#t.localService() : this.#t.service(this.#cluster, authority);
    }
    return this.#service;
  }

  end(result: CallResult): void {
    if (this.#ended) return;
    this.#ended = true;
    const durationMs = Math.max(0, this.#t.now() - this.#startMono);
    this.#t.record(this, result, durationMs);
    const flags = result.flags || '-';
    if (this.#span) this.#endSpans(result, flags);
    const sink = this.#t.accessLog;
    if (sink) {
      const info = this.#info;
      const h = info.headers;
      try {
        sink.write(
          formatAccessLogLine({
            startTimeMs: this.#startWall,
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
    const status = failed ? { code: SpanStatusCode.ERROR, message: flags === '-' ? undefined : flags } : undefined;
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

function spanName(info: CallInfo): string {
  // OTel semantic conventions: an RPC span is named by its method path, an HTTP span by its method.
  if (info.protocol === 'grpc' && info.path) return info.path.startsWith('/') ? info.path.slice(1) : info.path;
  return info.method ?? 'HTTP';
}

function clusterName(c: ClusterResource | string | undefined): string | undefined {
  return c === undefined ? undefined : typeof c === 'string' ? c : c.name;
}
