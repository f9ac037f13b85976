// The CSDS gRPC service (envoy.service.status.v3.ClientStatusDiscoveryService; gRFC A40) for
// a grpc-js Server: FetchClientStatus answers once, StreamClientStatus answers each request
// on the stream. Both report the clients' state at the moment of the request.
import type * as grpc from '@grpc/grpc-js';
import { buildClientStatusResponse, encodeClientStatusResponse, type ClientStatusResponse, type CsdsClients } from './csds.js';
import type { envoy_service_status_v3_ClientStatusRequest as ClientStatusRequest } from './generated/pb.js';
import { decodeMessage, encodeMessage } from './proto.js';
import { tracer } from './trace.js';

const trace = tracer('csds');

// grpc.status.INTERNAL, without loading grpc-js: this package uses grpc-js only for its types.
const INTERNAL = 13;

export const CSDS_SERVICE_NAME = 'envoy.service.status.v3.ClientStatusDiscoveryService';

const REQUEST_TYPE = 'envoy.service.status.v3.ClientStatusRequest';
const RESPONSE_TYPE = 'envoy.service.status.v3.ClientStatusResponse';

function method(name: string, stream: boolean): grpc.MethodDefinition<ClientStatusRequest, ClientStatusResponse> {
  return {
    path: `/${CSDS_SERVICE_NAME}/${name}`,
    originalName: name,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: (r) => Buffer.from(encodeMessage(REQUEST_TYPE, r)),
    requestDeserialize: (b) => decodeMessage<ClientStatusRequest>(REQUEST_TYPE, b),
    responseSerialize: (r) => Buffer.from(encodeClientStatusResponse(r)),
    responseDeserialize: (b) => decodeMessage<ClientStatusResponse>(RESPONSE_TYPE, b),
  };
}

/**
 * The service's methods, with protobuf (de)serializers for both sides: give it to
 * `server.addService` with your own handlers, or to `grpc.makeGenericClientConstructor` for
 * a client.
 */
export const csdsServiceDefinition = {
  StreamClientStatus: method('StreamClientStatus', true),
  FetchClientStatus: method('FetchClientStatus', false),
} satisfies grpc.ServiceDefinition;

function respond(clients: CsdsClients, request: ClientStatusRequest): ClientStatusResponse {
  // A40: node_matchers are for management servers; a client reports itself regardless.
  return buildClientStatusResponse(clients, { excludeResourceContents: request.exclude_resource_contents });
}

function internal(error: unknown): Partial<grpc.StatusObject> {
  trace(`failed to build the client status: ${(error as Error)?.stack ?? String(error)}`);
  return { code: INTERNAL, details: `meshlet CSDS: ${(error as Error)?.message ?? String(error)}` };
}

/** Add the CSDS service, reporting `clients`, to a grpc-js server (before or after it binds). */
export function addCsdsService(server: grpc.Server, clients: CsdsClients): void {
  server.addService(csdsServiceDefinition, {
    FetchClientStatus(
      call: grpc.ServerUnaryCall<ClientStatusRequest, ClientStatusResponse>,
      callback: grpc.sendUnaryData<ClientStatusResponse>,
    ): void {
      let response: ClientStatusResponse;
      try {
        response = respond(clients, call.request);
      } catch (error) {
        callback(internal(error));
        return;
      }
      callback(null, response);
    },
    StreamClientStatus(call: grpc.ServerDuplexStream<ClientStatusRequest, ClientStatusResponse>): void {
      call.on('data', (request: ClientStatusRequest) => {
        try {
          call.write(respond(clients, request));
        } catch (error) {
          call.emit('error', internal(error));
        }
      });
      call.on('end', () => call.end());
    },
  });
}
