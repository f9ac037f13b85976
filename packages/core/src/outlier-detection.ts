// Outlier detection: passive health checking from call results (Envoy:
// arch_overview/upstream/outlier and cluster/v3/outlier_detection.proto; gRFC A50 for gRPC).
//
// One OutlierDetector watches one set of hosts: a whole cluster for HTTP (Envoy), one priority
// for gRPC (A50 runs a detector per priority, "Per-priority outlier detection"). The transport
// reports each call's result with record(); ejected hosts are in ejected(), which the request
// path passes to the picker as `exclude`. Host state (counters, ejection, multiplier) lives as
// long as the host is in setHosts(), across config updates.
//
// Two flavors, because Envoy and A50 differ in the details and HTTP follows Envoy while gRPC
// follows the gRFC (docs/design.md):
//
// | | 'envoy' (HTTP) | 'grpc' (gRFC A50) |
// | --- | --- | --- |
// | algorithms | consecutive 5xx, consecutive gateway failure, consecutive local-origin failure (when split), success rate, failure percentage | success rate (on when enforcing_success_rate > 0) and failure percentage (on when enforcing_failure_percentage > 0) only |
// | max_ejection_percent | an ejection happens only if (ejected + 1) / hosts ≤ max %; `always_eject_one_host` allows one ejection when none is active | checked before each ejection: stop once ejected / hosts ≥ max %, so the first ejection always happens when max > 0 (as grpc-js; A50's text says "greater than") |
// | failure percentage | ejects at failure % ≥ threshold | ejects at failure % > threshold (A50's algorithm) |
// | ejection time | min(base × multiplier, max) + jitter (random in [0, max_ejection_time_jitter]); the multiplier stops growing once base × multiplier ≥ max + base | min(base × multiplier, max(base, max)); the multiplier always grows |
// | multiplier decrease | at each interval, for a host not ejected whose last un-ejection was at least one interval ago | at each interval, for every host not ejected |
// | un-ejection | at the start of the interval, when the time has come (≤) | at the end of the interval, once the time has passed (>) |
// | ejection timestamp | when ejected (consecutive ejections happen on the call that trips them) | when the interval timer fired |
//
// About max_ejection_percent: outlier_detection.proto used to say Envoy "will eject at least one
// host regardless of the value"; Envoy's DetectorImpl::ejectHost never did, and
// `always_eject_one_host` (default false) was added to get that behavior. A50 copied the old
// comment, and its algorithm (a check before each ejection) does eject at least one address.
//
// Local-origin errors (connection failures, resets, timeouts): with
// split_external_local_origin_errors false (the default) Envoy maps them to HTTP codes
// (connect failure and reset → 503, timeout → 504) so they count as 5xx and gateway failures;
// when true they have their own counters (consecutive_local_origin_failure and a local-origin
// success rate / failure percentage). A50 counts every non-OK call as a failure.
import { tracer, type Clock, type OutlierDetection, type TimerHandle } from '@meshlet/xds-client';
import type { Random } from './random.js';

const trace = tracer('outlier_detection');

export type OutlierFlavor = 'envoy' | 'grpc';

/**
 * The result of one call to a host:
 * - a number: the HTTP status of the host's response;
 * - 'success' / 'failure': a call whose protocol has no HTTP status (a gRPC status OK / not OK,
 *   Envoy's EXT_ORIGIN_REQUEST_SUCCESS / _FAILED);
 * - 'connect_failure': the connection could not be made, or the stream was reset (Envoy's
 *   router reports both as LOCAL_ORIGIN_CONNECT_FAILED); 'reset' is the same;
 * - 'timeout': no response in time (LOCAL_ORIGIN_TIMEOUT);
 * - 'connect_success': the connection was made (LOCAL_ORIGIN_CONNECT_SUCCESS; counts only when
 *   local-origin errors are split).
 */
export type CallOutcome = number | 'success' | 'failure' | 'connect_failure' | 'reset' | 'timeout' | 'connect_success';

/** Envoy's OutlierEjectionType (data/cluster/v3/outlier_detection_event.proto). */
export type EjectionType =
  | 'CONSECUTIVE_5XX'
  | 'CONSECUTIVE_GATEWAY_FAILURE'
  | 'CONSECUTIVE_LOCAL_ORIGIN_FAILURE'
  | 'SUCCESS_RATE'
  | 'SUCCESS_RATE_LOCAL_ORIGIN'
  | 'FAILURE_PERCENTAGE'
  | 'FAILURE_PERCENTAGE_LOCAL_ORIGIN';

export type OutlierEvent =
  | {
      readonly action: 'eject';
      readonly host: string;
      readonly type: EjectionType;
      /** How many times the host has been ejected, this one included. */
      readonly numEjections: number;
      /** How long it stays out at least (it returns at the first interval after). */
      readonly ejectionTimeMs: number;
    }
  | { readonly action: 'uneject'; readonly host: string };

export type OutlierListener = (event: OutlierEvent) => void;

/** Envoy's outlier_detection.* statistics for this detector. */
export interface OutlierStats {
  ejectionsActive: number;
  ejectionsOverflow: number;
  ejectionsEnforcedTotal: number;
  ejectionsDetected: Record<EjectionType, number>;
  ejectionsEnforced: Record<EjectionType, number>;
}

export interface OutlierDetectorOptions {
  /** 'envoy' for HTTP (default), 'grpc' for gRPC calls (gRFC A50). */
  readonly flavor?: OutlierFlavor;
  readonly clock: Clock;
  /** Enforcement draws and ejection jitter. */
  readonly random: Random;
}

interface Bucket {
  success: number;
  total: number;
}

class HostState {
  // Two buckets per origin: `cur` counts this interval, `prev` is what the last interval saw
  // (Envoy's SuccessRateAccumulator, A50's call counter).
  cur: Bucket = { success: 0, total: 0 };
  prev: Bucket = { success: 0, total: 0 };
  localCur: Bucket = { success: 0, total: 0 };
  localPrev: Bucket = { success: 0, total: 0 };
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveLocal = 0;
  /** When the current ejection began; undefined when not ejected. */
  ejectedAt: number | undefined = undefined;
  lastUnejectedAt: number | undefined = undefined;
  /** Envoy's ejectTimeBackoff, A50's ejection time multiplier. */
  multiplier = 0;
  numEjections = 0;
  jitter = 0;

  constructor(readonly key: string) {}

  swapBuckets(): void {
    const p = this.prev;
    p.success = 0;
    p.total = 0;
    this.prev = this.cur;
    this.cur = p;
    const lp = this.localPrev;
    lp.success = 0;
    lp.total = 0;
    this.localPrev = this.localCur;
    this.localCur = lp;
  }

  resetCounters(): void {
    this.cur = { success: 0, total: 0 };
    this.prev = { success: 0, total: 0 };
    this.localCur = { success: 0, total: 0 };
    this.localPrev = { success: 0, total: 0 };
  }
}

const EJECTION_TYPES: readonly EjectionType[] = [
  'CONSECUTIVE_5XX',
  'CONSECUTIVE_GATEWAY_FAILURE',
  'CONSECUTIVE_LOCAL_ORIGIN_FAILURE',
  'SUCCESS_RATE',
  'SUCCESS_RATE_LOCAL_ORIGIN',
  'FAILURE_PERCENTAGE',
  'FAILURE_PERCENTAGE_LOCAL_ORIGIN',
];

function zeroByType(): Record<EjectionType, number> {
  const r = {} as Record<EjectionType, number>;
  for (const t of EJECTION_TYPES) r[t] = 0;
  return r;
}

/** An HTTP status that is a 5xx (Envoy's CodeUtility::is5xx). */
function is5xx(status: number): boolean {
  return status >= 500 && status < 600;
}

/** 502, 503 and 504 (Envoy's CodeUtility::isGatewayError). */
function isGatewayError(status: number): boolean {
  return status >= 502 && status <= 504;
}

export class OutlierDetector {
  readonly flavor: OutlierFlavor;
  private readonly clock: Clock;
  private readonly random: Random;
  private config: OutlierDetection | undefined;
  private readonly hosts = new Map<string, HostState>();
  private readonly ejectedSet = new Set<string>();
  private readonly listeners = new Set<OutlierListener>();
  private timer: TimerHandle | undefined;
  private timerStartedAt: number | undefined;
  private disposed = false;
  private readonly statsData: OutlierStats = {
    ejectionsActive: 0,
    ejectionsOverflow: 0,
    ejectionsEnforcedTotal: 0,
    ejectionsDetected: zeroByType(),
    ejectionsEnforced: zeroByType(),
  };

  constructor(config: OutlierDetection | undefined, options: OutlierDetectorOptions) {
    this.flavor = options.flavor ?? 'envoy';
    this.clock = options.clock;
    this.random = options.random;
    this.update(config);
  }

  // ------------------------------------------------------------ config and hosts

  /**
   * A new config (from the newest cluster resource); undefined turns detection off, which
   * returns every ejected host. The interval timer keeps its phase (gRFC A50: the next run is
   * `interval` after the previous one, or now if that has passed).
   */
  update(config: OutlierDetection | undefined): void {
    if (this.disposed) return;
    if (config !== undefined && config.maxEjectionTime < config.baseEjectionTime) {
      const { maxEjectionTime, baseEjectionTime } = config;
      // Envoy rejects such a cluster ("max_ejection_time cannot be smaller than
      // base_ejection_time"); should one get this far, the base time is the cap, as A50's
      // min(base × multiplier, max(base, max)) has it.
      trace(() => `max_ejection_time ${maxEjectionTime} < base_ejection_time ${baseEjectionTime}: capping at the base time`);
      config = { ...config, maxEjectionTime: config.baseEjectionTime };
    }
    this.config = config;
    if (!this.active()) {
      this.stopTimer();
      this.timerStartedAt = undefined;
      for (const h of this.hosts.values()) {
        if (h.ejectedAt !== undefined) this.uneject(h, this.clock.now());
        h.multiplier = 0;
      }
      return;
    }
    const interval = config!.interval;
    if (this.timerStartedAt === undefined) {
      this.timerStartedAt = this.clock.now();
      for (const h of this.hosts.values()) h.resetCounters();
      this.startTimer(interval);
    } else {
      this.stopTimer();
      this.startTimer(Math.max(0, interval - (this.clock.now() - this.timerStartedAt)));
    }
  }

  /**
   * The hosts to watch, by key (PickedHost.key). New hosts start clean; a host that stays keeps
   * its state; a host that leaves is forgotten (and leaves the ejected set).
   */
  setHosts(keys: Iterable<string>): void {
    const next = new Set(keys);
    for (const [k, h] of this.hosts) {
      if (next.has(k)) continue;
      if (h.ejectedAt !== undefined) {
        this.ejectedSet.delete(k);
        this.statsData.ejectionsActive--;
      }
      this.hosts.delete(k);
    }
    for (const k of next) if (!this.hosts.has(k)) this.hosts.set(k, new HostState(k));
  }

  /** Stop the timer; the detector does nothing afterwards. */
  dispose(): void {
    this.disposed = true;
    this.stopTimer();
    this.listeners.clear();
  }

  // ------------------------------------------------------------ request path

  /** Keys of the hosts ejected now. A live view: the same set object, updated in place. */
  ejected(): ReadonlySet<string> {
    return this.ejectedSet;
  }

  isEjected(hostKey: string): boolean {
    return this.ejectedSet.has(hostKey);
  }

  /** Report how one call to a host ended. Unknown hosts are ignored (A50: no map entry). */
  record(hostKey: string, outcome: CallOutcome): void {
    const config = this.config;
    if (config === undefined || this.disposed) return;
    const h = this.hosts.get(hostKey);
    if (h === undefined) return;
    if (this.flavor === 'grpc') {
      // A50: counting only when an algorithm is on (active() says so); OK is success, the rest failure.
      if (!this.active() || outcome === 'connect_success') return;
      h.cur.total++;
      if (outcome === 'success' || (typeof outcome === 'number' && !is5xx(outcome))) h.cur.success++;
      return;
    }
    if (typeof outcome === 'number') {
      this.putHttpStatus(h, outcome, config);
      return;
    }
    if (!config.splitExternalLocalOriginErrors) {
      // Envoy's putResultNoLocalExternalSplit: every result becomes an HTTP code.
      switch (outcome) {
        case 'success':
          return this.putHttpStatus(h, 200, config);
        case 'failure':
          return this.putHttpStatus(h, 500, config);
        case 'connect_failure':
        case 'reset':
          return this.putHttpStatus(h, 503, config);
        case 'timeout':
          return this.putHttpStatus(h, 504, config);
        case 'connect_success':
          return; // left to the HTTP status that follows
      }
    }
    // Envoy's putResultWithLocalExternalSplit.
    switch (outcome) {
      case 'connect_success':
        return this.localSuccess(h);
      case 'connect_failure':
      case 'reset':
      case 'timeout':
        return this.localFailure(h, config);
      case 'failure':
        return this.putHttpStatus(h, 503, config);
      case 'success':
        this.putHttpStatus(h, 200, config);
        return this.localSuccess(h);
    }
  }

  // ------------------------------------------------------------ observation

  /** Called on every ejection and un-ejection; returns the unsubscribe function. */
  subscribe(listener: OutlierListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): Readonly<OutlierStats> {
    return this.statsData;
  }

  /** Per-host state, for `meshlet dump` and tests. */
  hostState(hostKey: string):
    | { readonly ejected: boolean; readonly multiplier: number; readonly numEjections: number; readonly ejectedAt: number | undefined }
    | undefined {
    const h = this.hosts.get(hostKey);
    if (h === undefined) return undefined;
    return { ejected: h.ejectedAt !== undefined, multiplier: h.multiplier, numEjections: h.numEjections, ejectedAt: h.ejectedAt };
  }

  // ------------------------------------------------------------ counting (Envoy)

  private putHttpStatus(h: HostState, status: number, config: OutlierDetection): void {
    h.cur.total++;
    if (!is5xx(status)) {
      h.cur.success++;
      h.consecutive5xx = 0;
      h.consecutiveGateway = 0;
      return;
    }
    // Envoy's putHttpResponseCode: a gateway error counts toward both streaks, another 5xx
    // breaks the gateway streak. A streak trips when it reaches the threshold exactly.
    if (isGatewayError(status)) {
      if (++h.consecutiveGateway === config.consecutiveGatewayFailure) this.onConsecutive(h, 'CONSECUTIVE_GATEWAY_FAILURE');
    } else {
      h.consecutiveGateway = 0;
    }
    if (++h.consecutive5xx === config.consecutive5xx) this.onConsecutive(h, 'CONSECUTIVE_5XX');
  }

  private localSuccess(h: HostState): void {
    h.localCur.total++;
    h.localCur.success++;
    h.consecutiveLocal = 0;
  }

  private localFailure(h: HostState, config: OutlierDetection): void {
    h.localCur.total++;
    if (++h.consecutiveLocal === config.consecutiveLocalOriginFailure) this.onConsecutive(h, 'CONSECUTIVE_LOCAL_ORIGIN_FAILURE');
  }

  /** Envoy's onConsecutiveErrorWorker (run at once here; Envoy posts it to its main thread). */
  private onConsecutive(h: HostState, type: EjectionType): void {
    if (h.ejectedAt !== undefined) return;
    this.statsData.ejectionsDetected[type]++;
    this.envoyEject(h, type, this.clock.now());
    // The streak starts over whether or not the ejection was enforced.
    if (type === 'CONSECUTIVE_5XX') h.consecutive5xx = 0;
    else if (type === 'CONSECUTIVE_GATEWAY_FAILURE') h.consecutiveGateway = 0;
    else h.consecutiveLocal = 0;
  }

  // ------------------------------------------------------------ ejection

  private enforcement(type: EjectionType): number {
    const c = this.config!;
    switch (type) {
      case 'CONSECUTIVE_5XX':
        return c.enforcingConsecutive5xx;
      case 'CONSECUTIVE_GATEWAY_FAILURE':
        return c.enforcingConsecutiveGatewayFailure;
      case 'CONSECUTIVE_LOCAL_ORIGIN_FAILURE':
        return c.enforcingConsecutiveLocalOriginFailure;
      case 'SUCCESS_RATE':
        return c.enforcingSuccessRate;
      case 'SUCCESS_RATE_LOCAL_ORIGIN':
        return c.enforcingLocalOriginSuccessRate;
      case 'FAILURE_PERCENTAGE':
        return c.enforcingFailurePercentage;
      case 'FAILURE_PERCENTAGE_LOCAL_ORIGIN':
        return c.enforcingFailurePercentageLocalOrigin;
    }
  }

  /** A draw in [0, 100) below the enforcement percentage (Envoy's featureEnabled, A50's step). */
  private enforced(percent: number): boolean {
    return this.random.nextUint32() % 100 < percent;
  }

  /** Envoy's DetectorImpl::ejectHost. */
  private envoyEject(h: HostState, type: EjectionType, now: number): void {
    const c = this.config!;
    const n = this.hosts.size;
    const active = this.statsData.ejectionsActive;
    let allowed = (100 * (active + 1)) / n <= Math.min(100, c.maxEjectionPercent);
    if (c.alwaysEjectOneHost && active === 0) allowed = true;
    if (!allowed) {
      this.statsData.ejectionsOverflow++;
      trace(() => `${h.key}: ${type} ejection refused, max_ejection_percent ${c.maxEjectionPercent} reached`);
      return;
    }
    if (!this.enforced(this.enforcement(type))) {
      trace(() => `${h.key}: ${type} detected, not enforced`);
      return;
    }
    // Jitter in [0, max_ejection_time_jitter], drawn per ejection so that hosts return apart.
    h.jitter = c.maxEjectionTimeJitter > 0 ? this.random.nextUint32() % (c.maxEjectionTimeJitter + 1) : 0;
    // Envoy stops growing the multiplier once the time is at the cap, so a host that was
    // ejected many times comes down from the cap after a few healthy intervals.
    if (h.multiplier * c.baseEjectionTime < c.maxEjectionTime + c.baseEjectionTime) h.multiplier++;
    this.eject(h, type, now, Math.min(c.baseEjectionTime * h.multiplier, c.maxEjectionTime) + h.jitter);
  }

  private eject(h: HostState, type: EjectionType, now: number, ejectionTimeMs: number): void {
    h.ejectedAt = now;
    h.numEjections++;
    this.ejectedSet.add(h.key);
    const s = this.statsData;
    s.ejectionsActive++;
    s.ejectionsEnforcedTotal++;
    s.ejectionsEnforced[type]++;
    trace(() => `${h.key}: ejected (${type}), ejection #${h.numEjections} for ${ejectionTimeMs} ms`);
    this.emit({ action: 'eject', host: h.key, type, numEjections: h.numEjections, ejectionTimeMs });
  }

  private uneject(h: HostState, now: number): void {
    h.ejectedAt = undefined;
    h.lastUnejectedAt = now;
    // Envoy resets the streaks so a host does not go straight back out on a few errors.
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    h.consecutiveLocal = 0;
    this.ejectedSet.delete(h.key);
    this.statsData.ejectionsActive--;
    trace(() => `${h.key}: returned`);
    this.emit({ action: 'uneject', host: h.key });
  }

  private emit(e: OutlierEvent): void {
    for (const l of this.listeners) l(e);
  }

  // ------------------------------------------------------------ the interval

  /** Whether the timer runs and calls are counted. */
  private active(): boolean {
    const c = this.config;
    if (c === undefined) return false;
    if (this.flavor === 'envoy') return true;
    // A50 "xDS Integration": an enforcement of 0 leaves the algorithm out of the config.
    return c.enforcingSuccessRate > 0 || c.enforcingFailurePercentage > 0;
  }

  private startTimer(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.onInterval(), ms);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Run one interval now (what the timer does); for tests and tools. */
  runInterval(): void {
    if (this.active()) this.onInterval();
  }

  private onInterval(): void {
    this.stopTimer();
    if (this.disposed || !this.active()) return;
    const c = this.config!;
    const now = this.clock.now();
    this.timerStartedAt = now;
    this.startTimer(c.interval);
    if (this.flavor === 'envoy') this.envoyInterval(c, now);
    else this.a50Interval(c, now);
  }

  /** Envoy's DetectorImpl::onIntervalTimer. */
  private envoyInterval(c: OutlierDetection, now: number): void {
    for (const h of this.hosts.values()) {
      if (h.ejectedAt !== undefined && Math.min(c.baseEjectionTime * h.multiplier, c.maxEjectionTime) + h.jitter <= now - h.ejectedAt) {
        this.uneject(h, now);
      }
      h.swapBuckets();
    }
    this.envoySuccessRate(c, now, false);
    this.envoySuccessRate(c, now, true);
    for (const h of this.hosts.values()) {
      if (h.ejectedAt === undefined && h.lastUnejectedAt !== undefined && now - h.lastUnejectedAt >= c.interval && h.multiplier > 0) {
        h.multiplier--;
      }
    }
  }

  /** Envoy's processSuccessRateEjections for the external or the local-origin counters. */
  private envoySuccessRate(c: OutlierDetection, now: number, local: boolean): void {
    const n = this.hosts.size;
    if (n < c.successRateMinimumHosts && n < c.failurePercentageMinimumHosts) return;
    const sr: { h: HostState; rate: number }[] = [];
    const fp: { h: HostState; rate: number }[] = [];
    let sum = 0;
    for (const h of this.hosts.values()) {
      if (h.ejectedAt !== undefined) continue;
      const b = local ? h.localPrev : h.prev;
      if (b.total === 0) continue;
      const rate = (b.success * 100) / b.total;
      if (b.total >= c.successRateRequestVolume) {
        sr.push({ h, rate });
        sum += rate;
      }
      if (b.total >= c.failurePercentageRequestVolume) fp.push({ h, rate });
    }
    if (sr.length > 0 && sr.length >= c.successRateMinimumHosts) {
      const mean = sum / sr.length;
      let variance = 0;
      for (const { rate } of sr) variance += (rate - mean) * (rate - mean);
      const stdev = Math.sqrt(variance / sr.length);
      const threshold = mean - (c.successRateStdevFactor / 1000) * stdev;
      trace(() => `success rate${local ? ' (local origin)' : ''}: mean ${mean}, stdev ${stdev}, threshold ${threshold}`);
      const type: EjectionType = local ? 'SUCCESS_RATE_LOCAL_ORIGIN' : 'SUCCESS_RATE';
      for (const { h, rate } of sr) {
        if (rate < threshold && h.ejectedAt === undefined) {
          this.statsData.ejectionsDetected[type]++;
          this.envoyEject(h, type, now);
        }
      }
    }
    if (fp.length > 0 && fp.length >= c.failurePercentageMinimumHosts) {
      const type: EjectionType = local ? 'FAILURE_PERCENTAGE_LOCAL_ORIGIN' : 'FAILURE_PERCENTAGE';
      for (const { h, rate } of fp) {
        if (100 - rate >= c.failurePercentageThreshold && h.ejectedAt === undefined) {
          this.statsData.ejectionsDetected[type]++;
          this.envoyEject(h, type, now);
        }
      }
    }
  }

  /** gRFC A50 "Outlier Detection Behavior", steps 1 to 5. */
  private a50Interval(c: OutlierDetection, now: number): void {
    for (const h of this.hosts.values()) h.swapBuckets();
    if (c.enforcingSuccessRate > 0) this.a50SuccessRate(c, now);
    if (c.enforcingFailurePercentage > 0) this.a50FailurePercentage(c, now);
    const cap = Math.max(c.baseEjectionTime, c.maxEjectionTime);
    for (const h of this.hosts.values()) {
      if (h.ejectedAt === undefined) {
        if (h.multiplier > 0) h.multiplier--;
      } else if (now > h.ejectedAt + Math.min(c.baseEjectionTime * h.multiplier, cap)) {
        this.uneject(h, now);
      }
    }
  }

  /** A50: stop once the ejected share has reached max_ejection_percent (checked before each ejection). */
  private a50AtMax(c: OutlierDetection): boolean {
    return (this.statsData.ejectionsActive * 100) / this.hosts.size >= c.maxEjectionPercent;
  }

  private a50Eject(h: HostState, type: EjectionType, now: number, enforcement: number, c: OutlierDetection): void {
    this.statsData.ejectionsDetected[type]++;
    if (!this.enforced(enforcement)) return;
    h.multiplier++;
    this.eject(h, type, now, Math.min(c.baseEjectionTime * h.multiplier, Math.max(c.baseEjectionTime, c.maxEjectionTime)));
  }

  private a50SuccessRate(c: OutlierDetection, now: number): void {
    const rates: number[] = [];
    for (const h of this.hosts.values()) {
      if (h.ejectedAt === undefined && h.prev.total >= c.successRateRequestVolume && h.prev.total > 0) {
        rates.push(h.prev.success / h.prev.total);
      }
    }
    if (rates.length === 0 || rates.length < c.successRateMinimumHosts) return;
    let sum = 0;
    for (const r of rates) sum += r;
    const mean = sum / rates.length;
    let variance = 0;
    for (const r of rates) variance += (r - mean) * (r - mean);
    const threshold = mean - Math.sqrt(variance / rates.length) * (c.successRateStdevFactor / 1000);
    for (const h of this.hosts.values()) {
      if (this.a50AtMax(c)) break;
      const b = h.prev;
      if (h.ejectedAt !== undefined || b.total === 0 || b.total < c.successRateRequestVolume) continue;
      if (b.success / b.total < threshold) this.a50Eject(h, 'SUCCESS_RATE', now, c.enforcingSuccessRate, c);
    }
  }

  private a50FailurePercentage(c: OutlierDetection, now: number): void {
    let candidates = 0;
    for (const h of this.hosts.values()) {
      if (h.ejectedAt === undefined && h.prev.total >= c.failurePercentageRequestVolume) candidates++;
    }
    if (candidates < c.failurePercentageMinimumHosts) return;
    for (const h of this.hosts.values()) {
      if (this.a50AtMax(c)) break;
      const b = h.prev;
      if (h.ejectedAt !== undefined || b.total === 0 || b.total < c.failurePercentageRequestVolume) continue;
      if (((b.total - b.success) * 100) / b.total > c.failurePercentageThreshold) {
        this.a50Eject(h, 'FAILURE_PERCENTAGE', now, c.enforcingFailurePercentage, c);
      }
    }
  }
}

/**
 * Detectors by key, kept across snapshots so host state survives config updates: the cluster
 * name for HTTP, cluster and priority for gRPC (A50 runs one per priority). `get` creates a
 * detector or brings it up to date with the newest config and host list; `retain` disposes of
 * the detectors whose key is gone.
 */
export class OutlierDetectorRegistry {
  private readonly detectors = new Map<string, OutlierDetector>();

  constructor(private readonly options: OutlierDetectorOptions) {}

  get(key: string, config: OutlierDetection | undefined, hostKeys: Iterable<string>): OutlierDetector {
    let d = this.detectors.get(key);
    if (d === undefined) {
      d = new OutlierDetector(config, this.options);
      this.detectors.set(key, d);
    } else {
      d.update(config);
    }
    d.setHosts(hostKeys);
    return d;
  }

  peek(key: string): OutlierDetector | undefined {
    return this.detectors.get(key);
  }

  retain(keys: Iterable<string>): void {
    const keep = new Set(keys);
    for (const [k, d] of this.detectors) {
      if (keep.has(k)) continue;
      d.dispose();
      this.detectors.delete(k);
    }
  }

  get size(): number {
    return this.detectors.size;
  }
}
