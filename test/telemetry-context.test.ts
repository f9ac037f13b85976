// A call meshlet does not trace (no TracerProvider) still carries the application's own active
// span in its trace headers, when a context manager can hold one. MeshTelemetry checks for a
// context manager on refresh() rather than on every call; without one, no span can be active.
import { afterEach, describe, expect, it } from 'vitest';
import { context, ROOT_CONTEXT, trace, TraceFlags, type SpanContext } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeshTelemetry } from '@meshlet/core';

const APP_SPAN: SpanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED };

function headersOf(t: MeshTelemetry): Record<string, string> {
  const r = t.startCall({ reporter: 'source', protocol: 'http', method: 'GET', path: '/', authority: 'a.test:80' })!;
  expect(r).toBeDefined();
  const out: Record<string, string> = {};
  context.with(trace.setSpanContext(ROOT_CONTEXT, APP_SPAN), () => r.injectTraceHeaders((k, v) => (out[k] = v)));
  r.end({ status: 200 });
  return out;
}

describe('trace headers of calls meshlet does not trace', () => {
  afterEach(() => context.disable());

  it("carry the application's active span once a context manager is registered", () => {
    const t = new MeshTelemetry({ prometheus: true });
    // No context manager: nothing can be active, nothing is written.
    expect(headersOf(t)).toEqual({});
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    t.refresh(); // as a config change (or the 1024th call) does
    expect(headersOf(t)).toEqual({ traceparent: `00-${APP_SPAN.traceId}-${APP_SPAN.spanId}-01` });
  });

  it('pick up a context manager registered after the mesh within 1024 calls, with no config change', () => {
    const t = new MeshTelemetry({ prometheus: true });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    let seen = 0;
    for (let i = 0; i < 1024 && seen === 0; i++) if (headersOf(t)['traceparent']) seen = i + 1;
    expect(seen).toBeGreaterThan(0);
    expect(headersOf(t)['traceparent']).toBe(`00-${APP_SPAN.traceId}-${APP_SPAN.spanId}-01`);
  });
});
