// The ADS gRPC service, defined by hand for grpc-js: requests decode through the
// generated protobuf types; responses are pre-framed (see wire.ts) and only concatenated.
import type { ServiceDefinition } from '@grpc/grpc-js';
import { protoType } from '@meshlet/xds-client/proto';
import type { envoy_service_discovery_v3_DiscoveryRequest as DiscoveryRequest } from '@meshlet/xds-client/pb';
import { serializeResponse, type PreparedResponse } from './wire.js';

export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const SOTW_METHOD_PATH = `/${ADS_SERVICE_NAME}/StreamAggregatedResources`;

const REQUEST_TYPE = 'envoy.service.discovery.v3.DiscoveryRequest';
const RESPONSE_TYPE = 'envoy.service.discovery.v3.DiscoveryResponse';

export type { DiscoveryRequest };

function decodeRequest(bytes: Buffer): DiscoveryRequest {
  return protoType(REQUEST_TYPE).decode(bytes) as unknown as DiscoveryRequest;
}

export const adsServiceDefinition: ServiceDefinition = {
  StreamAggregatedResources: {
    path: SOTW_METHOD_PATH,
    requestStream: true,
    responseStream: true,
    originalName: 'streamAggregatedResources',
    requestSerialize: (value: DiscoveryRequest) => Buffer.from(protoType(REQUEST_TYPE).encode(value).finish()),
    requestDeserialize: decodeRequest,
    responseSerialize: (value: PreparedResponse) => serializeResponse(value),
    responseDeserialize: (bytes: Buffer) => protoType(RESPONSE_TYPE).decode(bytes),
  },
};
