// ORCA per-call load reports (gRFC A51): a backend may end a call with an
// `endpoint-load-metrics-bin` trailer holding an xds.data.orca.v3.OrcaLoadReport. Weighted
// round robin (A58) reads four of its fields; the decoder below reads exactly those from the
// protobuf wire format and skips the rest (the message's .proto is not among the ones the
// project generates code from, and four doubles do not need it):
//   1 cpu_utilization (double), 6 rps_fractional (double), 7 eps (double),
//   9 application_utilization (double).
import type { Metadata } from '@grpc/grpc-js';

export const ORCA_TRAILER = 'endpoint-load-metrics-bin';

export interface OrcaReport {
  readonly cpuUtilization: number;
  readonly applicationUtilization: number;
  /** Queries per second (rps_fractional). */
  readonly qps: number;
  /** Errors per second. */
  readonly eps: number;
}

function readVarint(buf: Buffer, pos: { i: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos.i >= buf.length) throw new RangeError('truncated varint');
    const b = buf[pos.i++]!;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result;
    shift += 7;
    if (shift > 63) throw new RangeError('varint too long');
  }
}

/** The report's fields A58 uses, or undefined when the bytes are not a valid message. */
export function decodeOrcaReport(buf: Buffer): OrcaReport | undefined {
  const out = { cpuUtilization: 0, applicationUtilization: 0, qps: 0, eps: 0 };
  const pos = { i: 0 };
  try {
    while (pos.i < buf.length) {
      const tag = readVarint(buf, pos);
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      switch (wire) {
        case 0:
          readVarint(buf, pos);
          break;
        case 1: {
          if (pos.i + 8 > buf.length) return undefined;
          const v = buf.readDoubleLE(pos.i);
          pos.i += 8;
          if (field === 1) out.cpuUtilization = v;
          else if (field === 6) out.qps = v;
          else if (field === 7) out.eps = v;
          else if (field === 9) out.applicationUtilization = v;
          break;
        }
        case 2: {
          const len = readVarint(buf, pos);
          if (pos.i + len > buf.length) return undefined;
          pos.i += len;
          break;
        }
        case 5:
          if (pos.i + 4 > buf.length) return undefined;
          pos.i += 4;
          break;
        default:
          return undefined;
      }
    }
  } catch {
    return undefined;
  }
  return out;
}

/** The report in a call's trailers, if the backend sent one. */
export function orcaReportOf(trailers: Metadata | undefined): OrcaReport | undefined {
  const v = trailers?.get(ORCA_TRAILER)[0];
  return Buffer.isBuffer(v) ? decodeOrcaReport(v) : undefined;
}
