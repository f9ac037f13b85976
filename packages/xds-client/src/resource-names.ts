// Resource names (gRFC A47): an `xdstp://authority/type/id?params` name is routed to its
// authority's servers and cached under a canonical form (query parameters sorted), so
// two spellings of one resource share an entry. Any other name is an old-style name,
// served by the top-level xds_servers and used as it is.

export interface ParsedResourceName {
  /** The authority of an xdstp:// name; undefined for an old-style name. */
  readonly authority?: string;
  /** The cache key and the name sent to the server. */
  readonly key: string;
}

export function parseResourceName(name: string): ParsedResourceName {
  if (!name.startsWith('xdstp:')) return { key: name };
  let url: URL;
  try {
    url = new URL(name);
  } catch {
    return { key: name };
  }
  const authority = url.host;
  const params = [...url.searchParams.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const query = params.length ? `?${new URLSearchParams(params).toString()}` : '';
  return { authority, key: `xdstp://${authority}${url.pathname}${query}` };
}
