// How a target names its Listener, the Istio way: the Listener resource name is the
// authority `host:port` (port defaulted from the scheme for URLs), put through the
// bootstrap's client_default_listener_resource_name_template (gRFC A27, A47).
import { formatResourceNameTemplate, MeshletError, type Bootstrap } from '@meshlet/xds-client';

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443, 'grpc:': 80 };

export interface ParsedTarget {
  /** host:port, the authority virtual hosts are matched with. */
  readonly authority: string;
  /** The xDS authority named in an `xds://authority/...` target (gRFC A47), if any. */
  readonly xdsAuthority: string | undefined;
}

/**
 * Accepts `host:port`, `host` (port 80), `http(s)://host[:port]/...` and
 * `xds:///host:port` / `xds://authority/host:port`.
 */
export function parseTarget(target: string): ParsedTarget {
  if (target === '') throw new MeshletError('MESHLET_INVALID_OPTION', 'target: empty');
  const xds = /^xds:\/\/([^/]*)\/(.+)$/.exec(target);
  if (xds) return { authority: xds[2]!, xdsAuthority: xds[1] === '' ? undefined : xds[1] };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new MeshletError('MESHLET_INVALID_OPTION', `target: not a URL: ${JSON.stringify(target)}`);
    }
    const port = url.port !== '' ? Number(url.port) : DEFAULT_PORTS[url.protocol];
    if (port === undefined) throw new MeshletError('MESHLET_INVALID_OPTION', `target: no default port for scheme ${url.protocol} in ${JSON.stringify(target)}`);
    return { authority: `${url.hostname}:${port}`, xdsAuthority: undefined };
  }
  if (/[/?#\s]/.test(target)) throw new MeshletError('MESHLET_INVALID_OPTION', `target: want host:port, got ${JSON.stringify(target)}`);
  const hasPort = target.startsWith('[') ? /\]:\d+$/.test(target) : /:\d+$/.test(target);
  return { authority: hasPort ? target : `${target}:80`, xdsAuthority: undefined };
}

/**
 * The Listener resource name for an authority: the bootstrap's template with `%s`
 * replaced (percent-encoded for an `xdstp:` template, gRFC A47).
 */
export function listenerNameFor(authority: string, template: string | undefined): string {
  return formatResourceNameTemplate(template && template !== '' ? template : '%s', authority);
}

/**
 * A target's authority and Listener name under a bootstrap: `xds://authority/...` targets
 * use that authority's template (gRFC A47; the bootstrap fills in its default), others the
 * client default template. Throws for an authority the bootstrap does not list.
 */
export function resolveTarget(target: string, bootstrap: Bootstrap): { authority: string; listenerName: string } {
  const parsed = parseTarget(target);
  let template = bootstrap.clientDefaultListenerResourceNameTemplate;
  if (parsed.xdsAuthority !== undefined) {
    const auth = bootstrap.authorities[parsed.xdsAuthority];
    if (!auth) throw new MeshletError('MESHLET_INVALID_OPTION', `target ${target}: authority "${parsed.xdsAuthority}" is not in the bootstrap's authorities`);
    template = auth.clientListenerResourceNameTemplate;
  }
  return { authority: parsed.authority, listenerName: listenerNameFor(parsed.authority, template) };
}
