// The mesh runtime against the real control plane: a target's snapshot routes and
// balances, follows updates, keeps its balancers when nothing they depend on changed,
// and reports a missing Listener as not_found.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { headersFromRecord, Mesh, seededRandom, type MeshRequest, type MeshTarget } from '@meshlet/core';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const TARGET = 'svc.test:80';

function request(path: string, headers: Record<string, string> = {}): MeshRequest {
  return { method: 'GET', path, authority: TARGET, scheme: 'http', headers: headersFromRecord(headers) };
}

function nextChange(t: MeshTarget): Promise<void> {
  return new Promise((resolve) => {
    const off = t.onChange(() => {
      off();
      resolve();
    });
  });
}

describe('Mesh', () => {
  let cp: ControlPlane;
  let mesh: Mesh;

  beforeEach(async () => {
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(TARGET, 'rc')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc', [{ domains: [TARGET], routes: [{ prefix: '/b', cluster: 'b' }, { prefix: '/', cluster: 'a' }] }]),
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('a'), edsCluster('b')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints('a', [['127.0.0.1', 1001], ['127.0.0.1', 1002]]),
      endpoints('b', [['127.0.0.1', 2001]]),
    ]);
    mesh = new Mesh({ bootstrap: bootstrapFor(address), random: seededRandom(7), resourceDoesNotExistTimeoutMs: 300, listenerCatalog: false });
  });

  afterEach(async () => {
    mesh.close();
    await cp.stop();
  });

  it('builds a snapshot that routes and balances', async () => {
    const target = mesh.target(TARGET);
    expect(target.state).toBe('pending');
    const snap = await target.ready();
    expect(target.state).toBe('ready');
    const d = snap.routeTable.route(request('/b/x'), mesh.random);
    expect(d.kind === 'forward' && d.cluster).toBe('b');
    const a = snap.clusters.get('a')!.lb!;
    const picks = new Set(Array.from({ length: 4 }, () => a.pick()!.key));
    expect(picks).toEqual(new Set(['127.0.0.1:1001', '127.0.0.1:1002']));
    expect([...snap.endpointKeys].sort()).toEqual(['127.0.0.1:1001', '127.0.0.1:1002', '127.0.0.1:2001']);
    expect(mesh.target(TARGET)).toBe(target);
  });

  it('swaps the snapshot on an update and keeps untouched balancers', async () => {
    const target = mesh.target(TARGET);
    const first = await target.ready();
    const changed = nextChange(target);
    cp.updateResources(TYPE_URLS.clusterLoadAssignment, [endpoints('b', [['127.0.0.1', 2002]])]);
    await changed;
    const second = target.snapshot!;
    expect(second).not.toBe(first);
    expect(second.clusters.get('a')!.lb).toBe(first.clusters.get('a')!.lb);
    expect(second.clusters.get('b')!.lb!.pick()!.key).toBe('127.0.0.1:2002');
    expect(second.routeTable).toBe(first.routeTable);
    // The old snapshot still works for requests that started with it.
    expect(first.clusters.get('b')!.lb!.pick()!.key).toBe('127.0.0.1:2001');
  });

  it('shares host counters across snapshots', async () => {
    const snap = await mesh.target(TARGET).ready();
    const host = snap.clusters.get('b')!.lb!.pick()!;
    expect(mesh.hostStats(host.key)).toBe(mesh.hostStats('127.0.0.1:2001'));
  });

  it('knows a host is not in the mesh from the listener catalog, without waiting for the 15 s timer, and follows it when it joins', async () => {
    const quick = new Mesh({ bootstrap: mesh.client.bootstrap, random: seededRandom(1) });
    try {
      const t = quick.target('later.test:80');
      await expect(t.ready()).rejects.toMatchObject({ code: 'MESHLET_XDS_RESOURCE_DOES_NOT_EXIST' });
      expect(t.state).toBe('not_found');
      // The catalog went out as a wildcard: an LDS request with no names.
      expect(cp.requests.some((r) => r.typeUrl === TYPE_URLS.listener && r.resourceNames.length === 0)).toBe(true);
      const joined = new Promise<void>((resolve) => t.onChange(() => t.state === 'ready' && resolve()));
      cp.updateResources(TYPE_URLS.routeConfiguration, [routeConfig('rc-any', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'b' }] }])]);
      cp.updateResources(TYPE_URLS.listener, [listener('later.test:80', 'rc-any')]);
      await joined;
      expect(t.snapshot?.routeTable.route(request('/b'), quick.random).kind).toBe('forward');
    } finally {
      quick.close();
    }
  });

  it('the catalog reads Listener names only: a Listener the mesh NACKs is listed, and its target reports the NACK', async () => {
    const quick = new Mesh({ bootstrap: mesh.client.bootstrap, random: seededRandom(1) });
    try {
      quick.target(TARGET); // starts the catalog
      cp.updateResources(TYPE_URLS.listener, [
        // An api_listener that is not an HttpConnectionManager: invalid for the mesh's decoder.
        { '@type': TYPE_URLS.listener, name: 'broken.test:80', api_listener: { api_listener: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } } },
      ]);
      const t = quick.target('broken.test:80');
      await expect(t.ready()).rejects.toMatchObject({ code: 'MESHLET_XDS_RESOURCE_INVALID' });
      // The mesh's stream NACKed it; the catalog's wildcard stream, which applies names only, ACKed.
      const isWildcard = (r: { typeUrl: string; resourceNames: string[] }) => r.typeUrl === TYPE_URLS.listener && r.resourceNames.length === 0;
      const nack = await cp.waitForRequest((r) => r.kind === 'nack' && r.typeUrl === TYPE_URLS.listener && /broken\.test:80/.test(r.errorDetail!.message));
      const version = cp.version(TYPE_URLS.listener);
      const catalogAck = await cp.waitForRequest((r) => isWildcard(r) && r.kind === 'ack' && r.versionInfo === version);
      expect(catalogAck.streamId).not.toBe(nack.streamId);
      expect(cp.requests.some((r) => r.kind === 'nack' && r.streamId === catalogAck.streamId)).toBe(false);
    } finally {
      quick.close();
    }
  });

  it('reports a host with no Listener as not_found (catalog off: gRFC A57 timer)', async () => {
    const t = mesh.target('nowhere.test:80');
    await expect(t.ready()).rejects.toMatchObject({ code: 'MESHLET_XDS_RESOURCE_DOES_NOT_EXIST' });
    expect(t.state).toBe('not_found');
  });
});
