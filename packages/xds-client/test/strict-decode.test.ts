import { describe, expect, it } from 'vitest';
import { clusterResourceType } from '../src/resources/index.js';
import { decodeMessage, TYPE_URLS } from '../src/proto.js';

// Bytes as grpc-js hands them over: a Node Buffer slice of a larger message.
function bufferSlice(bytes: number[], trailing: number[]): Buffer {
  return Buffer.from([...bytes, ...trailing]).subarray(0, bytes.length);
}

describe('decoding is strict about lengths', () => {
  // name (field 1) claims 33,554,431 bytes; only one follows.
  const overlong = [0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01];

  it('rejects a string that runs past the end, even in a Buffer slice', () => {
    const value = bufferSlice(overlong, [0x41, 0x42, 0x43]);
    const result = clusterResourceType.decode({ serverFeatures: [] }, { type_url: TYPE_URLS.cluster, value });
    expect(result.error).toMatch(/cannot decode Cluster: index out of range/);
    expect(result.name).toBeUndefined();
  });

  it('decodeMessage throws on it too', () => {
    expect(() => decodeMessage('envoy.config.cluster.v3.Cluster', bufferSlice(overlong, [0x41]))).toThrow(/index out of range/);
  });
});
