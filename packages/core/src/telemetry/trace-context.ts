// Trace context on the wire: W3C Trace Context (`traceparent`, `tracestate`) and Zipkin's B3
// (single `b3` header, or the multi-header `x-b3-*` form Envoy and Istio's Zipkin setup use).
// The OpenTelemetry API defines the span context but ships no propagator (those live in
// @opentelemetry/core, which libraries should not depend on), so the few lines that format
// and parse these headers are here.
import type { SpanContext } from '@opentelemetry/api';
import { otel } from './otel.js';
import type { RequestHeaders } from '../request.js';

/**
 * `global` hands the span to the propagator the application registered with the OTel API
 * (`propagation.setGlobalPropagator`, as NodeSDK does), so its formats and baggage apply.
 */
export type TracePropagationFormat = 'tracecontext' | 'b3' | 'b3multi' | 'global';

export const DEFAULT_PROPAGATION: readonly TracePropagationFormat[] = Object.freeze(['tracecontext']);

export type HeaderSetter = (name: string, value: string) => void;

/** Write a span context in each format asked for. */
export function injectSpanContext(sc: SpanContext, formats: readonly TracePropagationFormat[], set: HeaderSetter): void {
  if (!otel().isSpanContextValid(sc)) return;
  const sampled = (sc.traceFlags & otel().TraceFlags.SAMPLED) === otel().TraceFlags.SAMPLED;
  for (const f of formats) {
    if (f === 'tracecontext') {
      // https://www.w3.org/TR/trace-context/#traceparent-header (version 00)
      set('traceparent', `00-${sc.traceId}-${sc.spanId}-0${sampled ? '1' : '0'}`);
      const state = sc.traceState?.serialize();
      if (state) set('tracestate', state);
    } else if (f === 'b3') {
      set('b3', `${sc.traceId}-${sc.spanId}-${sampled ? '1' : '0'}`);
    } else if (f === 'global') {
      otel().propagation.inject(otel().trace.setSpanContext(otel().context.active(), sc), undefined, { set: (_carrier, key, value) => set(key, value) });
    } else {
      set('x-b3-traceid', sc.traceId);
      set('x-b3-spanid', sc.spanId);
      set('x-b3-sampled', sampled ? '1' : '0');
    }
  }
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const HEX_ID = /^[0-9a-f]{16}([0-9a-f]{16})?$/;
const HEX_SPAN = /^[0-9a-f]{16}$/;

/**
 * The remote span context of an incoming request, from the first of the formats asked for
 * that the request carries; undefined when none is there or it is malformed.
 */
export function extractSpanContext(headers: RequestHeaders, formats: readonly TracePropagationFormat[]): SpanContext | undefined {
  for (const f of formats) {
    const sc =
      f === 'tracecontext'
        ? fromTraceparent(headers)
        : f === 'b3'
          ? fromB3Single(headers) ?? fromB3Multi(headers)
          : f === 'global'
            ? fromGlobal(headers)
            : fromB3Multi(headers) ?? fromB3Single(headers);
    if (sc) return sc;
  }
  return undefined;
}

function fromGlobal(headers: RequestHeaders): SpanContext | undefined {
  // RequestHeaders cannot list its names: propagators that scan for a prefix see none.
  const ctx = otel().propagation.extract(otel().ROOT_CONTEXT, headers, { get: (h, key) => h.get(key.toLowerCase()), keys: () => [] });
  const sc = otel().trace.getSpanContext(ctx);
  return sc && otel().isSpanContextValid(sc) ? sc : undefined;
}

function fromTraceparent(headers: RequestHeaders): SpanContext | undefined {
  const tp = headers.get('traceparent');
  if (!tp) return undefined;
  const m = TRACEPARENT.exec(tp.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  // Version ff is invalid; version 00 has nothing after the flags.
  if (version === 'ff' || (version === '00' && rest)) return undefined;
  const sc: SpanContext = { traceId: traceId!, spanId: spanId!, traceFlags: parseInt(flags!, 16) & 1, isRemote: true };
  if (!otel().isSpanContextValid(sc)) return undefined;
  const state = headers.get('tracestate');
  if (state) sc.traceState = otel().createTraceState(state);
  return sc;
}

function b3Sampled(v: string | undefined, debug: boolean): number {
  return debug || v === '1' || v === 'd' || v === 'true' ? otel().TraceFlags.SAMPLED : otel().TraceFlags.NONE;
}

function fromB3Single(headers: RequestHeaders): SpanContext | undefined {
  const b3 = headers.get('b3');
  if (!b3) return undefined;
  const [traceId, spanId, sampled] = b3.trim().toLowerCase().split('-');
  return b3Context(traceId, spanId, b3Sampled(sampled, false));
}

function fromB3Multi(headers: RequestHeaders): SpanContext | undefined {
  const traceId = headers.get('x-b3-traceid');
  if (!traceId) return undefined;
  return b3Context(traceId.toLowerCase(), headers.get('x-b3-spanid')?.toLowerCase(), b3Sampled(headers.get('x-b3-sampled'), headers.get('x-b3-flags') === '1'));
}

function b3Context(traceId: string | undefined, spanId: string | undefined, flags: number): SpanContext | undefined {
  if (!traceId || !spanId || !HEX_ID.test(traceId) || !HEX_SPAN.test(spanId)) return undefined;
  // A 64-bit B3 trace id is left-padded to W3C's 128 bits.
  const sc: SpanContext = { traceId: traceId.padStart(32, '0'), spanId, traceFlags: flags, isRemote: true };
  return otel().isSpanContextValid(sc) ? sc : undefined;
}
