import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TYPE_URLS } from '@meshlet/xds-client/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlane, loadConfigDir } from '../src/index.js';
import { AdsTestClient, namesIn } from './ads-test-client.js';

const LDS = TYPE_URLS.listener;
const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.clusterLoadAssignment;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshlet-cp-config-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const CLUSTERS_YAML = `
"@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
name: c1
type: EDS
eds_cluster_config: { eds_config: { ads: {} } }
---
"@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
name: c2
connect_timeout: 1s
`;

const ENDPOINTS_JSON = JSON.stringify({
  resources: [
    {
      '@type': EDS,
      cluster_name: 'c1',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 8080 } } } }] }],
    },
  ],
});

const LISTENERS_YML = `
- "@type": envoy.config.listener.v3.Listener
  name: "a:80"
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: "b:80"
`;

function writeConfig(dir: string): void {
  writeFileSync(join(dir, 'clusters.yaml'), CLUSTERS_YAML);
  writeFileSync(join(dir, 'endpoints.json'), ENDPOINTS_JSON);
  writeFileSync(join(dir, 'listeners.yml'), LISTENERS_YML);
  writeFileSync(join(dir, 'README.md'), '# not a resource\n');
}

/** A log sink whose lines can be awaited. */
function logSink() {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  return {
    lines,
    log: (line: string) => {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    },
    next: (re: RegExp) => new Promise<string>((resolve) => waiters.push({ re, resolve })),
  };
}

async function serving(dir: string) {
  const sink = logSink();
  const cp = new ControlPlane({ configDir: dir, configDebounceMs: 20, log: sink.log });
  const { address } = await cp.start();
  cleanups.push(() => cp.stop());
  const client = new AdsTestClient(address);
  cleanups.push(() => client.close());
  return { cp, client, sink };
}

function nextReload(cp: ControlPlane): Promise<{ changedTypes: string[] }> {
  return new Promise((resolve) => cp.once('reload', resolve));
}

describe('config directory', () => {
  it('loads every *.yaml, *.yml and *.json file: single resources, lists, multi-document YAML, { resources }', async () => {
    const dir = tempDir();
    writeConfig(dir);
    const { cp, client } = await serving(dir);
    expect([...cp.getResources(CDS).keys()]).toEqual(['c1', 'c2']);
    expect([...cp.getResources(LDS).keys()]).toEqual(['a:80', 'b:80']);
    client.send({ typeUrl: EDS, names: ['c1'] });
    expect(namesIn(await client.next(), 'cluster_name')).toEqual(['c1']);
  });

  it('pushes a new version when a file is edited', async () => {
    const dir = tempDir();
    writeConfig(dir);
    const { cp, client } = await serving(dir);
    client.send({ typeUrl: CDS });
    const first = await client.next();
    client.ack(first, []);
    writeFileSync(join(dir, 'clusters.yaml'), `${CLUSTERS_YAML}---\n"@type": ${CDS}\nname: c3\n`);
    const pushed = await client.next();
    expect(namesIn(pushed)).toEqual(['c1', 'c2', 'c3']);
    expect(pushed.version_info).not.toBe(first.version_info);
    expect(pushed.version_info).toBe(cp.version(CDS));
  });

  it('sees a file replaced by rename, as editors save', async () => {
    const dir = tempDir();
    writeConfig(dir);
    const { client } = await serving(dir);
    client.send({ typeUrl: LDS });
    await client.next();
    const tmp = join(dir, '.listeners.yml.swp');
    writeFileSync(tmp, `"@type": ${LDS}\nname: "c:80"\n`);
    renameSync(tmp, join(dir, 'listeners.yml'));
    expect(namesIn(await client.next())).toEqual(['c:80']);
  });

  it('keeps a broken file\'s last good resources, logging one line naming the file and the field, and applies the other files', async () => {
    const dir = tempDir();
    writeConfig(dir);
    const { cp, client, sink } = await serving(dir);
    client.send({ typeUrl: CDS });
    const first = await client.next();
    const version = cp.version(CDS);

    let logged = sink.next(/clusters\.yaml/);
    writeFileSync(join(dir, 'clusters.yaml'), `"@type": ${CDS}\nname: c1\nconnect_timeout: soon\n`);
    expect(await logged).toMatch(/^meshlet control-plane: clusters\.yaml: Cluster "c1": connect_timeout: invalid duration .*keeping that file's last good resources\)$/);
    expect(cp.version(CDS)).toBe(version);

    logged = sink.next(/listeners\.yml/);
    writeFileSync(join(dir, 'listeners.yml'), 'name: [unclosed\n');
    expect(await logged).toMatch(/listeners\.yml: not valid YAML \(line \d+/);
    expect([...cp.getResources(LDS).keys()]).toEqual(['a:80', 'b:80']);

    // A good edit of another file applies while those two are broken.
    const edsVersion = cp.version(EDS);
    const applied = nextReload(cp);
    writeFileSync(join(dir, 'endpoints.json'), JSON.stringify({ resources: [{ '@type': EDS, cluster_name: 'c1', endpoints: [] }] }));
    await applied;
    expect(cp.version(EDS)).not.toBe(edsVersion);
    expect([...cp.getResources(CDS).keys()].sort()).toEqual(['c1', 'c2']);

    // One line per problem.
    logged = sink.next(/endpoints\.json/);
    writeFileSync(join(dir, 'endpoints.json'), '{"resources": [ {"@type": "nope"} ]}');
    expect(await logged).toMatch(/endpoints\.json: resources\[0\] \(nope\): @type: unknown type/);
    expect(sink.lines.every((l) => !l.includes('\n'))).toBe(true);

    const reloaded = nextReload(cp);
    writeConfig(dir);
    await reloaded;
    expect(cp.version(CDS)).toBe(version);
    client.ack(first, []);
    await cp.waitForRequest((r) => r.kind === 'ack');
  });

  it('removes the resources of a deleted file', async () => {
    const dir = tempDir();
    writeConfig(dir);
    const { cp, client } = await serving(dir);
    client.send({ typeUrl: LDS });
    await client.next();
    unlinkSync(join(dir, 'listeners.yml'));
    expect((await client.next()).resources).toHaveLength(0);
    expect(cp.getResources(LDS).size).toBe(0);
    expect(cp.getResources(CDS).size).toBe(2);
  });

  it('leaves types set from code alone', async () => {
    const dir = tempDir();
    writeConfig(dir);
    const { cp } = await serving(dir);
    const rds = TYPE_URLS.routeConfiguration;
    cp.setResources(rds, [{ name: 'r1' }]);
    const reloaded = nextReload(cp);
    unlinkSync(join(dir, 'endpoints.json'));
    expect((await reloaded).changedTypes).toEqual([EDS]);
    expect(cp.getResources(rds).size).toBe(1);
  });

  it('reports a resource defined in two files, and a missing @type', () => {
    const dir = tempDir();
    writeConfig(dir);
    writeFileSync(join(dir, 'more.yaml'), `"@type": ${CDS}\nname: c2\n`);
    writeFileSync(join(dir, 'untyped.json'), '{"name": "x"}');
    const result = loadConfigDir(dir);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      { file: 'more.yaml', message: 'Cluster "c2": also defined in clusters.yaml document 2' },
      { file: 'untyped.json', message: expect.stringMatching(/^@type: missing/) },
    ]);
  });

  it('serves the good files when one is bad from the start', () => {
    const dir = tempDir();
    writeConfig(dir);
    writeFileSync(join(dir, 'typo.yaml'), `"@type": ${CDS}\nname: c9\nconnect_timeout: soon\n`);
    const result = loadConfigDir(dir);
    expect(result.ok).toBe(false);
    expect(result.errors).toEqual([{ file: 'typo.yaml', message: expect.stringMatching(/^Cluster "c9": connect_timeout: invalid duration/) }]);
    expect([...(result.byType.get(CDS) ?? [])].map((r) => r.name).sort()).toEqual(['c1', 'c2']);
    expect(result.perFile.get('typo.yaml')).toEqual([]);
  });

  it('refuses a configDir that is not a directory', async () => {
    const cp = new ControlPlane({ configDir: join(tempDir(), 'absent') });
    await expect(cp.start()).rejects.toThrow(/not a directory/);
  });
});
