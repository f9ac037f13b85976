// The Location of a redirect (route_components.proto RedirectAction), computed as
// Envoy's Http::Utility::newUri does after the route's path rewrite:
// - scheme: scheme_redirect, else https when https_redirect, else the request's;
// - port: ":<port_redirect>" when set;
// - host: host_redirect, else the request's authority, whose port is dropped when
//   port_redirect is set, or when the scheme changes and the port is the default of
//   the request's scheme (http://h:80 → https://h, https://h:443 → http://h);
// - path: path_redirect (keeping the request's query unless path_redirect has its
//   own), else the (rewritten) request path; "/" is prefixed when missing;
// - strip_query drops the query unless path_redirect carried one.
// A direct_response with status 201 or 3xx gets a Location too: the request's own URL.
import type { RedirectAction } from '@meshlet/xds-client';
import type { MeshRequest } from './request.js';

/** Envoy's Utility::processRequestHost. */
function requestHost(authority: string, requestScheme: string, newScheme: string, newPort: string): string {
  if (authority === '') return authority;
  let end: number;
  if (authority.startsWith('[')) {
    end = authority.lastIndexOf(']:');
    if (end >= 0) end += 1;
  } else {
    end = authority.lastIndexOf(':');
  }
  if (end < 0) return authority;
  const port = authority.slice(end);
  let remove = newPort !== '';
  if (newScheme !== requestScheme) {
    remove ||= requestScheme === 'https' && port === ':443';
    remove ||= requestScheme === 'http' && port === ':80';
  }
  return remove ? authority.slice(0, end) : authority;
}

/**
 * The Location for `redirect` (or, with `redirect` undefined, a direct response's own
 * URL). `path` is the request path after the route's prefix/regex rewrite.
 */
export function redirectLocation(redirect: RedirectAction | undefined, req: MeshRequest, path: string): string {
  const requestScheme = req.scheme;
  let scheme: string;
  if (redirect?.schemeRedirect) scheme = redirect.schemeRedirect;
  else if (redirect?.httpsRedirect) scheme = 'https';
  else scheme = requestScheme;
  const port = redirect?.portRedirect ? `:${redirect.portRedirect}` : '';
  const host = redirect?.hostRedirect ? redirect.hostRedirect : requestHost(req.authority, requestScheme, scheme, port);
  let finalPath: string;
  const pathRedirect = redirect?.pathRedirect;
  const redirectHasQuery = pathRedirect !== undefined && pathRedirect !== '' && pathRedirect.includes('?');
  if (pathRedirect) {
    if (redirectHasQuery) finalPath = pathRedirect;
    else {
      const q = path.indexOf('?');
      finalPath = q >= 0 ? pathRedirect + path.slice(q) : pathRedirect;
    }
  } else {
    finalPath = path;
  }
  if (!finalPath.startsWith('/')) finalPath = '/' + finalPath;
  if (redirect !== undefined && !redirectHasQuery && redirect.stripQuery) {
    const q = finalPath.indexOf('?');
    if (q >= 0) finalPath = finalPath.slice(0, q);
  }
  return `${scheme}://${host}${port}${finalPath}`;
}
