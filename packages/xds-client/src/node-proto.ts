// google.protobuf.* types keep protobufjs's camelCase field names (see generated/pb.ts).
// The Node message sent on the first request of each ADS stream, built from the
// bootstrap's node (gRFC A27) plus what the client says about itself.
import type { NodeConfig } from './bootstrap.js';

export const USER_AGENT_NAME = 'meshlet';
export const USER_AGENT_VERSION = '0.1.0';

/**
 * Client features a control plane may key on: meshlet accepts Resource-wrapped entries
 * in SotW responses. It does not send `envoy.lb.does_not_support_overprovisioning`
 * (which gRPC sends): HTTP calls apply Envoy's overprovisioning factor, so a control
 * plane must not rewrite assignments for meshlet as it would for gRPC.
 */
export const CLIENT_FEATURES = ['xds.config.resource-in-sotw'];

/** The Node as a plain object ready for protoType(...).fromObject (field names as in the .proto). */
export function nodeMessage(node: NodeConfig, userAgent?: { name?: string; version?: string }): Record<string, unknown> {
  return {
    id: node.id,
    cluster: node.cluster,
    locality: { ...node.locality },
    metadata: toStruct(node.metadata),
    user_agent_name: userAgent?.name ?? USER_AGENT_NAME,
    user_agent_version: userAgent?.version ?? USER_AGENT_VERSION,
    client_features: CLIENT_FEATURES,
  };
}

/** A JSON object as a google.protobuf.Struct in protobufjs object form. */
export function toStruct(json: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    if (value !== undefined) fields[key] = toValue(value);
  }
  return { fields };
}

function toValue(value: unknown): Record<string, unknown> {
  if (value === null || value === undefined) return { nullValue: 0 };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  switch (typeof value) {
    case 'string':
      return { stringValue: value };
    case 'number':
      return { numberValue: value };
    case 'boolean':
      return { boolValue: value };
    case 'object':
      return { structValue: toStruct(value as Record<string, unknown>) };
    default:
      return { stringValue: String(value) };
  }
}
