// grpc-js dynamic filters for what the mesh decides before a call leaves: a local failure
// (no route, no cluster: the status names why) and an injected fault (gRFC A33: a delay,
// then maybe an abort). They are added to a call only when it needs one, so an ordinary call
// carries no filter at all.
import { experimental, type Metadata, type StatusObject } from '@grpc/grpc-js';
import type { InjectedFault } from '@meshlet/core';
import type { Clock } from '@meshlet/xds-client';
import { meshletStatus } from './status.js';

type Filter = experimental.Filter;
type FilterFactory = experimental.FilterFactory<Filter>;

/** Fails the call with `status` before it is sent (grpc-js ends a call whose filter rejects). */
class FailFilter extends experimental.BaseFilter {
  constructor(private readonly status: StatusObject) {
    super();
  }
  override sendMetadata(_metadata: Promise<Metadata>): Promise<Metadata> {
    return Promise.reject(this.status);
  }
}

export function failFilterFactory(status: StatusObject): FilterFactory {
  return { createFilter: () => new FailFilter(status) };
}

/**
 * A33: the delay (on the mesh's clock) then the abort, with the active-fault slot held until
 * the delay ends without an abort, or the abort is answered. `done` runs when the call will
 * not reach a load balancer (aborted).
 */
class FaultFilter extends experimental.BaseFilter {
  constructor(
    private readonly fault: InjectedFault,
    private readonly clock: Clock,
    private readonly aborted: () => void,
  ) {
    super();
  }

  override async sendMetadata(metadata: Promise<Metadata>): Promise<Metadata> {
    const md = await metadata;
    const { delayMs, abort } = this.fault;
    if (delayMs !== undefined) await new Promise<void>((resolve) => this.clock.setTimeout(resolve, delayMs));
    this.fault.release();
    if (abort !== undefined) {
      this.aborted();
      throw meshletStatus('MESHLET_FAULT_INJECTED', 'fault filter abort', abort.grpcStatus ?? 2);
    }
    return md;
  }
}

export function faultFilterFactory(fault: InjectedFault, clock: Clock, aborted: () => void): FilterFactory {
  return { createFilter: () => new FaultFilter(fault, clock, aborted) };
}
