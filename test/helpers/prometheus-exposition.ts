// Reading Prometheus text exposition (format 0.0.4) as an exporter serves it: the samples and
// each family's # TYPE, # HELP and # UNIT lines, so tests can compare what was scraped.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  types: Map<string, string>;
  help: Map<string, string>;
  units: Map<string, string>;
}

export function parseExposition(text: string): Exposition {
  const out: Exposition = { samples: [], types: new Map(), help: new Map(), units: new Map() };
  for (const line of text.split('\n')) {
    const meta = /^# (TYPE|HELP|UNIT) (\S+) (.*)$/.exec(line);
    if (meta) {
      const table = meta[1] === 'TYPE' ? out.types : meta[1] === 'HELP' ? out.help : out.units;
      if (table.has(meta[2]!)) throw new Error(`# ${meta[1]} ${meta[2]} appears twice`);
      table.set(meta[2]!, meta[3]!);
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    out.samples.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

/** A sample as one comparable line: name, labels sorted by name, value. */
export function sampleLine(s: Sample): string {
  const labels = Object.entries(s.labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',');
  return `${s.name}{${labels}} ${s.value}`;
}
