// Istio's telemetry for gRPC calls (reporter="source"): the same CallRecorder the HTTP
// layer uses (core's MeshTelemetry: metrics, spans, access log), fed from grpc-js's call
// model. Only a call made while something listens gets a recorder (startCall returns
// undefined otherwise), so an ordinary call pays one branch:
// - the config selector starts the recording and names the cluster;
// - a per-call filter writes the trace and peer metadata headers into the call's metadata,
//   reads the server's from its response headers, counts messages and bytes, and ends the
//   recording with the call's final status (grpc-js runs every filter's receiveTrailers,
//   local failures included);
// - the picker reports each attempt's host (the call's recorder is found through its pick
//   information, which carries strings only).
// The response code is 200, as Envoy reports a gRPC call (a local reply included), with the
// gRPC status beside it; the response flags come from meshlet's status details (`UO ...`)
// and from the fault filter's delay (DI).
import { experimental, type Metadata, type StatusObject } from '@grpc/grpc-js';
import type { CallRecorder } from '@meshlet/core';

type WriteObject = Awaited<Parameters<experimental.Filter['sendMessage']>[0]>;

const FLAG_RE = /^([A-Z]{2,4}) MESHLET_[A-Z_]+: /;

/** Envoy's response flags of a call that ended with `details`, plus `extra` (e.g. DI). */
export function responseFlags(details: string, extra: readonly string[]): string {
  const m = FLAG_RE.exec(details);
  const flags = m ? [...extra, m[1]!] : extra;
  return flags.length === 0 ? '-' : [...new Set(flags)].join(',');
}

/** Recorders of calls in flight by id, for the picker to report attempts. */
export class RecorderRegistry {
  readonly #recorders = new Map<string, CallRecorder>();
  #next = 0;

  add(rec: CallRecorder): string {
    const id = String(++this.#next);
    this.#recorders.set(id, rec);
    return id;
  }

  get(id: string | undefined): CallRecorder | undefined {
    return id === undefined ? undefined : this.#recorders.get(id);
  }

  delete(id: string): void {
    this.#recorders.delete(id);
  }
}

function firstString(md: Metadata, name: string): string | undefined {
  const v = md.get(name)[0];
  return typeof v === 'string' ? v : undefined;
}

class TelemetryFilter extends experimental.BaseFilter {
  #sent = 0;
  #received = 0;
  #ended = false;

  constructor(
    private readonly rec: CallRecorder,
    private readonly extraFlags: readonly string[],
    private readonly done: () => void,
  ) {
    super();
  }

  override async sendMetadata(metadata: Promise<Metadata>): Promise<Metadata> {
    const md = await metadata;
    this.rec.injectHeaders((name, value) => md.set(name, value));
    return md;
  }

  override receiveMetadata(md: Metadata): Metadata {
    this.rec.receivedHeaders((name) => firstString(md, name));
    return md;
  }

  override async sendMessage(message: Promise<WriteObject>): Promise<WriteObject> {
    const m = await message;
    this.#sent++;
    this.rec.requestBytes(m.message.length);
    return m;
  }

  override async receiveMessage(message: Promise<Buffer>): Promise<Buffer> {
    const m = await message;
    this.#received++;
    this.rec.responseBytes(m.length);
    return m;
  }

  override receiveTrailers(status: StatusObject): StatusObject {
    if (!this.#ended) {
      this.#ended = true;
      this.rec.messages(this.#sent, this.#received);
      this.rec.end({ status: 200, grpcStatus: status.code, flags: responseFlags(status.details, this.extraFlags) });
      this.done();
    }
    return status;
  }
}

export function telemetryFilterFactory(rec: CallRecorder, extraFlags: readonly string[], done: () => void): experimental.FilterFactory<experimental.Filter> {
  return { createFilter: () => new TelemetryFilter(rec, extraFlags, done) };
}
