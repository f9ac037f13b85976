// ORCA report decoding (A51) and the weights weighted round robin derives from them (A58).
import { describe, expect, it } from 'vitest';
import type { PickedHost } from '@meshlet/core';
import type { Clock, WeightedRoundRobinConfig } from '@meshlet/xds-client';
import { decodeOrcaReport } from '../src/orca.js';
import { OrcaWeightedPicker } from '../src/wrr-orca.js';

function report(fields: Array<[number, number]>): Buffer {
  const parts: Buffer[] = [];
  for (const [field, value] of fields) {
    const b = Buffer.alloc(9);
    b[0] = (field << 3) | 1;
    b.writeDoubleLE(value, 1);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

const clockAt = (t: { now: number }): Clock => ({ now: () => t.now, setTimeout: () => 0, clearTimeout: () => {} });
const CONFIG: WeightedRoundRobinConfig = {
  enableOobLoadReport: false,
  oobReportingPeriod: 10_000,
  blackoutPeriod: 10_000,
  weightExpirationPeriod: 180_000,
  weightUpdatePeriod: 1_000,
  errorUtilizationPenalty: 1,
};
const host = (key: string): PickedHost => ({ key, priority: 0 }) as PickedHost;

describe('ORCA and weighted round robin', () => {
  it('decodes the fields A58 reads and skips the others', () => {
    // A map entry (field 4, length-delimited) and a varint (field 3) are skipped.
    const extra = Buffer.from([(4 << 3) | 2, 2, 0x0a, 0x00, (3 << 3) | 0, 0x96, 0x01]);
    const r = decodeOrcaReport(Buffer.concat([report([[1, 0.5], [6, 42]]), extra, report([[7, 2], [9, 0.25]])]));
    expect(r).toEqual({ cpuUtilization: 0.5, qps: 42, eps: 2, applicationUtilization: 0.25 });
    expect(decodeOrcaReport(Buffer.from([(1 << 3) | 1, 1, 2]))).toBeUndefined();
  });

  it('weighs qps / utilization after the blackout period, until the weights expire', () => {
    const t = { now: 1_000_000 };
    const p = new OrcaWeightedPicker(CONFIG, clockAt(t));
    const hosts = [host('a'), host('b')];
    p.record('a', { cpuUtilization: 0.5, applicationUtilization: 0, qps: 100, eps: 0 }); // 200
    p.record('b', { cpuUtilization: 0.9, applicationUtilization: 0.25, qps: 100, eps: 25 }); // 100 / (0.25 + 0.25) = 200
    expect(p.pick(hosts, undefined)).toBeUndefined(); // blackout: no weights yet
    t.now += 10_000;
    const picks = Array.from({ length: 10 }, () => p.pick(hosts, undefined)!.key);
    expect(picks.filter((k) => k === 'a')).toHaveLength(5);
    t.now += 180_000; // expired
    expect(p.pick(hosts, undefined)).toBeUndefined();
  });

  it('gives an endpoint with no weight the mean, and skips excluded endpoints', () => {
    const t = { now: 5 };
    const p = new OrcaWeightedPicker({ ...CONFIG, blackoutPeriod: 0 }, clockAt(t));
    const hosts = [host('a'), host('b'), host('c')];
    p.record('a', { cpuUtilization: 0.1, applicationUtilization: 0, qps: 30, eps: 0 }); // 300
    p.record('b', { cpuUtilization: 1, applicationUtilization: 0, qps: 100, eps: 0 }); // 100
    const picks = Array.from({ length: 600 }, () => p.pick(hosts, undefined)!.key);
    expect(picks.filter((k) => k === 'a')).toHaveLength(300);
    expect(picks.filter((k) => k === 'c')).toHaveLength(200); // the mean, 200
    const excluded = new Set(['a']);
    expect(p.pick(hosts, excluded)?.key).not.toBe('a');
  });
});
