import { describe, expect, it } from 'vitest';
import { grpcRetryPolicy } from '../src/retry-grpc.js';
import { retryPolicy } from './retry-fixtures.js';

describe('gRPC retry policy (gRFC A44)', () => {
  it('keeps only gRPC status names and converts the numbers', () => {
    expect(grpcRetryPolicy(retryPolicy({ retryOn: ['5xx', 'unavailable', 'cancelled', 'bogus'], numRetries: 3 }))).toEqual({
      maxAttempts: 4,
      initialBackoffMs: 25,
      maxBackoffMs: 250,
      backoffMultiplier: 2,
      retryableStatusCodes: [1, 14],
    });
    expect(grpcRetryPolicy(retryPolicy({ retryOn: ['internal', 'resource-exhausted', 'deadline-exceeded'], retryBackOff: { baseInterval: 100, maxInterval: 400 } }))).toMatchObject({
      maxAttempts: 2,
      initialBackoffMs: 100,
      maxBackoffMs: 400,
      retryableStatusCodes: [4, 8, 13],
    });
  });

  it('no gRPC condition, no policy, or num_retries 0: no retry policy', () => {
    expect(grpcRetryPolicy(retryPolicy({ retryOn: ['5xx', 'reset'] }))).toBeUndefined();
    expect(grpcRetryPolicy(undefined)).toBeUndefined();
    expect(grpcRetryPolicy(retryPolicy({ retryOn: ['unavailable'], numRetries: 0 }))).toBeUndefined();
  });
});
