// The contract between the ADS transport and the resource decoders. Each xDS
// resource type is one object in a registry keyed by type URL (as grpc-js-xds's
// xds-resource-type/ does), so a user can add a type.

/** An Any as protobufjs decodes it. */
export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

/** What a decoder may consult besides the bytes. */
export interface DecodeContext {
  /** server_features of the xDS server the resource came from. */
  readonly serverFeatures: readonly string[];
}

/**
 * A decoded resource, or the reason it is invalid. A result with an error but a
 * name NACKs that one resource (gRFC A46: the other resources of the response are
 * still applied); an error without a name fails the whole response.
 */
export type DecodeResult<T> =
  | { readonly name: string; readonly value: T; readonly error?: undefined }
  | { readonly name?: string; readonly value?: undefined; readonly error: string };

export interface XdsResourceType<T> {
  /** v3 type URL, e.g. type.googleapis.com/envoy.config.cluster.v3.Cluster */
  readonly typeUrl: string;
  /** Short name for logs and errors: Listener, RouteConfiguration, Cluster, ClusterLoadAssignment */
  readonly shortName: string;
  /**
   * SotW deletion rule: when true (LDS, CDS) a resource missing from a response is
   * deleted; when false (RDS, EDS) omission deletes nothing (xDS protocol doc,
   * "Deleting resources"; gRFC A53 for ignore_resource_deletion).
   */
  readonly allResourcesRequiredInSotW: boolean;
  /** Decode and validate one resource. Must not throw. */
  decode(context: DecodeContext, resource: AnyMessage): DecodeResult<T>;
}
