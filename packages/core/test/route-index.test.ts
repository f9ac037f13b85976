// The segment trie must never change which route wins: compare indexed and
// scanned tables over randomly built route lists and paths.
import { describe, expect, it } from 'vitest';
import { seededRandom, type Random } from '../src/random.js';
import type { RouteDecision } from '../src/route-decision.js';
import { compileRouteTable } from '../src/route-table.js';
import { oneHost, request } from './route-fixtures.js';

const SEGMENTS = ['/a', '/b', '/ab', '/A', '/a-1'];
const TAILS = ['', '/', '/x', '/x/', '/x/y', '/x/y/z', '/x?q', '?q=1', '/?q', '#f', 'b', '-1/x', '//x', '?q/x/', '?q/'];

function pick<T>(r: Random, list: readonly T[]): T {
  return list[r.nextUint32() % list.length]!;
}

function randomMatch(r: Random): Record<string, unknown> {
  const literal = pick(r, SEGMENTS) + pick(r, TAILS);
  const caseSensitive = r.next() < 0.8;
  const base = caseSensitive ? {} : { case_sensitive: false };
  const headers = r.next() < 0.2 ? { headers: [{ name: 'x', present_match: true }] } : {};
  switch (r.nextUint32() % 5) {
    case 0:
      return { prefix: literal.replace(/[#]/g, ''), ...base, ...headers };
    case 1:
      return { path: literal, ...base, ...headers };
    case 2:
      return { path_separated_prefix: pick(r, SEGMENTS) + pick(r, ['', '/x', '/x/y', '/x/y/z']), ...base, ...headers };
    case 3:
      return { safe_regex: { regex: `${pick(r, SEGMENTS)}.*` }, ...headers };
    default:
      return { prefix: pick(r, ['', '/', '/a', '/a/']), ...base, ...headers };
  }
}

function label(d: RouteDecision): string {
  return d.kind === 'forward' ? d.cluster! : d.kind;
}

describe('segment trie route index', () => {
  it('selects the same route as a full scan', () => {
    const r = seededRandom(2024);
    for (let t = 0; t < 40; t++) {
      const routes = Array.from({ length: 30 }, (_, i) => ({ match: randomMatch(r), route: { cluster: `r${i}` } }));
      const rc = oneHost(routes);
      const indexed = compileRouteTable(rc);
      const scanned = compileRouteTable(rc, { indexRoutes: false });
      for (let k = 0; k < 100; k++) {
        const path = pick(r, SEGMENTS) + pick(r, TAILS) + pick(r, ['', '/z', '/x/y', '?a=b', '/']);
        const req = request({ path, headers: r.next() < 0.5 ? { x: '1' } : {} });
        expect(label(indexed.route(req, seededRandom(1))), `${path} in table ${t}`).toBe(label(scanned.route(req, seededRandom(1))));
      }
    }
  });
});
