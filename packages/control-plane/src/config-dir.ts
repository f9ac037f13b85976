// Resources from a directory of files, for the demo and `meshlet control-plane`.
// Every *.yaml, *.yml and *.json file directly in the directory holds one resource with
// an "@type", a list of them, or `{ resources: [...] }`; a YAML file may hold several
// documents. Each file is all-or-nothing: a file that does not parse, or holds one
// invalid resource, keeps its last good resources in force (none, if it never loaded)
// while every other file's changes apply, so a half-saved edit never reaches a client
// and never holds the rest of the directory back.
import { readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { MeshletError, tracer } from '@meshlet/xds-client';
import { ProtoJsonError } from '@meshlet/xds-client/proto-json';
import { encodeResourceInput, type EncodedAny } from './resource-input.js';

const trace = tracer('control_plane');

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
const TYPE_URL_PREFIX = 'type.googleapis.com/';

export interface ConfigFileError {
  /** The file's name within the directory. */
  file: string;
  /** Where in the file and what is wrong: `resource [1] (Cluster "c"): lb_policy: unknown enum value`. */
  message: string;
}

export interface LoadedResource {
  name: string;
  any: EncodedAny;
  file: string;
}

export interface ConfigLoadResult {
  /** No file had a problem. */
  ok: boolean;
  dir: string;
  files: string[];
  /** The resources in force: each good file's, and each bad file's last good ones. */
  byType: Map<string, LoadedResource[]>;
  resourceCount: number;
  errors: ConfigFileError[];
  /** The resources in force per file, to pass back as `lastGood` next time. */
  perFile: Map<string, LoadedResource[]>;
}

interface FileResource extends LoadedResource {
  typeUrl: string;
  where: string;
}

/**
 * Read and encode every config file in `dir`. Never throws for bad content; reports it.
 * A file with a problem contributes its `lastGood` resources instead of its new ones.
 */
export function loadConfigDir(dir: string, lastGood: ReadonlyMap<string, readonly LoadedResource[]> = new Map()): ConfigLoadResult {
  const errors: ConfigFileError[] = [];
  const byType = new Map<string, LoadedResource[]>();
  const perFile = new Map<string, LoadedResource[]>();
  const files: string[] = [];
  let resourceCount = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir).filter((f) => EXTENSIONS.has(extname(f).toLowerCase())).sort();
  } catch (err) {
    // The directory is unreadable: everything stays as it was.
    errors.push({ file: dir, message: `cannot read the directory: ${messageOf(err)}` });
    entries = [];
    for (const [file, list] of lastGood) perFile.set(file, [...list]);
  }
  const owner = new Map<string, string>(); // `${typeUrl} ${name}` -> file
  const keep = (file: string, list: readonly FileResource[] | readonly LoadedResource[]): void => {
    const kept: LoadedResource[] = [];
    for (const r of list) {
      const typeUrl = 'typeUrl' in r ? (r as FileResource).typeUrl : r.any.type_url;
      const key = `${typeUrl} ${r.name}`;
      if (owner.has(key)) continue; // a last-good resource another file now defines
      const where = 'where' in r ? (r as FileResource).where : '';
      owner.set(key, `${file}${where ? ` ${where}` : ''}`);
      kept.push({ name: r.name, any: r.any, file });
      let bucket = byType.get(typeUrl);
      if (!bucket) byType.set(typeUrl, (bucket = []));
      bucket.push({ name: r.name, any: r.any, file });
      resourceCount++;
    }
    perFile.set(file, kept);
  };
  for (const file of entries) {
    const path = join(dir, file);
    let text: string;
    try {
      if (!statSync(path).isFile()) continue;
      text = readFileSync(path, 'utf8');
    } catch (err) {
      // Deleted between readdir and read (an editor replacing it): the next event reloads.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      errors.push({ file, message: messageOf(err) });
      continue;
    }
    files.push(file);
    const errorsBefore = errors.length;
    let items: { value: unknown; where: string }[] = [];
    try {
      items = parseFile(file, text);
    } catch (err) {
      errors.push({ file, message: messageOf(err) });
    }
    const fresh: FileResource[] = [];
    const inFile = new Set<string>();
    for (const { value, where } of items) {
      try {
        const { typeUrl, name, any } = encodeItem(value);
        const key = `${typeUrl} ${name}`;
        const first = owner.get(key);
        if (first !== undefined) throw new Error(`also defined in ${first}`);
        if (inFile.has(key)) throw new Error('defined twice in this file');
        inFile.add(key);
        fresh.push({ typeUrl, name, any, file, where });
      } catch (err) {
        const what = describeItem(value);
        const prefix = where && what ? `${where} (${what})` : where || what;
        errors.push({ file, message: prefix ? `${prefix}: ${messageOf(err)}` : messageOf(err) });
      }
    }
    keep(file, errors.length > errorsBefore ? (lastGood.get(file) ?? []) : fresh);
  }
  return { ok: errors.length === 0, dir, files, byType, resourceCount, errors, perFile };
}

/** The resources in one file, each with where it sits (`resource [2]`, `document 3`). */
function parseFile(file: string, text: string): { value: unknown; where: string }[] {
  const docs: unknown[] = [];
  if (extname(file).toLowerCase() === '.json') {
    try {
      docs.push(JSON.parse(text));
    } catch (err) {
      throw new Error(`not valid JSON: ${messageOf(err)}`);
    }
  } else {
    for (const doc of parseAllDocuments(text)) {
      const problem = doc.errors[0];
      if (problem) {
        const line = problem.linePos?.[0];
        throw new Error(`not valid YAML${line ? ` (line ${line.line}, column ${line.col})` : ''}: ${problem.message.split('\n')[0]}`);
      }
      docs.push(doc.toJS());
    }
  }
  const out: { value: unknown; where: string }[] = [];
  const many = docs.length > 1;
  docs.forEach((doc, d) => {
    const docWhere = many ? `document ${d + 1}` : '';
    if (doc === null || doc === undefined) return; // an empty document
    let list: unknown[] | undefined;
    if (Array.isArray(doc)) list = doc;
    else if (isObject(doc) && !('@type' in doc) && Array.isArray(doc['resources'])) list = doc['resources'];
    if (list) {
      const key = Array.isArray(doc) ? '' : 'resources';
      list.forEach((value, i) => out.push({ value, where: `${docWhere ? `${docWhere} ` : ''}${key}[${i}]` }));
    } else {
      out.push({ value: doc, where: docWhere });
    }
  });
  return out;
}

function encodeItem(value: unknown): { typeUrl: string; name: string; any: EncodedAny } {
  if (!isObject(value)) throw new Error('a resource must be an object with "@type"');
  const declared = value['@type'];
  if (typeof declared !== 'string' || declared === '') {
    throw new Error('@type: missing; each resource needs "@type", e.g. type.googleapis.com/envoy.config.cluster.v3.Cluster');
  }
  // Accept a bare message name too, as people write it from memory.
  const typeUrl = declared.includes('/') ? declared : TYPE_URL_PREFIX + declared;
  try {
    const { name, any } = encodeResourceInput(typeUrl, { ...value, '@type': typeUrl });
    return { typeUrl, name, any };
  } catch (err) {
    if (err instanceof ProtoJsonError) throw new Error(err.message);
    throw err;
  }
}

/** `Cluster "c1"`, to say which resource of a file a problem is in. */
function describeItem(value: unknown): string {
  if (!isObject(value) || typeof value['@type'] !== 'string') return '';
  const name = value['name'] ?? value['cluster_name'] ?? value['clusterName'];
  return `${shortType(value['@type'])}${typeof name === 'string' ? ` "${name}"` : ''}`;
}

function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Loads the directory, then reloads it when anything in it changes. Watches the
 * directory, not the files, so editors that save by writing a new file and renaming it
 * over the old one are seen too.
 */
export class ConfigDirWatcher {
  private fsWatcher: FSWatcher | undefined;
  private lastGood: ReadonlyMap<string, readonly LoadedResource[]> = new Map();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly dir: string,
    private readonly options: { debounceMs: number; onLoad: (result: ConfigLoadResult) => void },
  ) {}

  /** Load now (synchronously) and start watching. Throws when `dir` is not a directory. */
  start(): void {
    let isDir = false;
    try {
      isDir = statSync(this.dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new MeshletError('MESHLET_INVALID_OPTION', `control plane option configDir: ${this.dir} is not a directory`);
    this.stopped = false;
    this.reload();
    this.watch();
  }

  reload(): ConfigLoadResult {
    const result = loadConfigDir(this.dir, this.lastGood);
    this.lastGood = result.perFile;
    trace(() => (result.ok ? `loaded ${result.resourceCount} resources from ${this.dir}` : `config errors in ${this.dir}: ${result.errors.length}`));
    this.options.onLoad(result);
    return result;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
  }

  private watch(): void {
    try {
      this.fsWatcher = watch(this.dir, { persistent: false }, (_event, filename) => {
        if (filename && !EXTENSIONS.has(extname(filename.toString()).toLowerCase())) return;
        this.schedule();
      });
      this.fsWatcher.on('error', (err) => {
        // The directory itself went away or was replaced: watch again after a pause.
        trace(`watching ${this.dir} failed: ${err.message}`);
        this.fsWatcher?.close();
        this.fsWatcher = undefined;
        this.retryWatch();
      });
    } catch (err) {
      trace(`cannot watch ${this.dir}: ${messageOf(err)}`);
      this.retryWatch();
    }
  }

  private retryWatch(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.watch();
      this.reload();
    }, Math.max(this.options.debounceMs, 500));
    this.timer.unref();
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) this.reload();
    }, this.options.debounceMs);
  }
}
