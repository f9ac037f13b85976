// Transport sockets: raw_buffer (plaintext) and the TLS contexts, gRFC A29 style:
// certificates come from certificate provider instances named in the bootstrap
// (file_watcher in Istio's proxyless mode), never inline or over SDS.
import type {
  envoy_config_core_v3_TransportSocket,
  envoy_extensions_transport_sockets_tls_v3_CertificateValidationContext,
  envoy_extensions_transport_sockets_tls_v3_CommonTlsContext,
  envoy_extensions_transport_sockets_tls_v3_DownstreamTlsContext,
  envoy_extensions_transport_sockets_tls_v3_UpstreamTlsContext,
} from '../generated/pb.js';
import { boolOf, fail, stringMatcher, sub } from './common.js';
import { decodeBytes } from './typed-config.js';
import type { CertificateProviderInstance, CommonTlsContext, SanMatcher, TransportSocket } from './types.js';

const RAW_BUFFER_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';
const UPSTREAM_TLS_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const DOWNSTREAM_TLS_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

export function parseTransportSocket(
  ts: envoy_config_core_v3_TransportSocket | null | undefined,
  path: string,
  side: 'upstream' | 'downstream',
): TransportSocket | undefined {
  if (!ts) return undefined;
  const any = ts.typed_config;
  if (!any) {
    if (ts.name === 'envoy.transport_sockets.raw_buffer' || ts.name === 'raw_buffer') {
      return { name: ts.name, kind: 'plaintext' };
    }
    fail(sub(path, 'typed_config'), `transport socket "${ts.name}" needs a typed_config`);
  }
  const p = sub(path, 'typed_config');
  switch (any.type_url) {
    case RAW_BUFFER_URL:
      return { name: ts.name, kind: 'plaintext' };
    case UPSTREAM_TLS_URL: {
      if (side !== 'upstream') fail(p, 'UpstreamTlsContext is not valid on a listener');
      const u = decodeBytes<envoy_extensions_transport_sockets_tls_v3_UpstreamTlsContext>(
        'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        any.value,
        p,
      );
      const common = commonTlsContext(u.common_tls_context, sub(p, 'common_tls_context'));
      // gRFC A29: a client must be able to verify the server.
      if (!common.caCertificateProviderInstance && !common.useSystemRootCerts) {
        fail(sub(p, 'common_tls_context'), 'a CA certificate provider instance (or system_root_certs) is required');
      }
      return {
        name: ts.name,
        kind: 'tls',
        upstreamTls: { commonTlsContext: common, sni: u.sni, allowRenegotiation: u.allow_renegotiation },
      };
    }
    case DOWNSTREAM_TLS_URL: {
      if (side !== 'downstream') fail(p, 'DownstreamTlsContext is not valid on a cluster');
      const d = decodeBytes<envoy_extensions_transport_sockets_tls_v3_DownstreamTlsContext>(
        'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
        any.value,
        p,
      );
      const common = commonTlsContext(d.common_tls_context, sub(p, 'common_tls_context'));
      const requireClientCertificate = boolOf(d.require_client_certificate, false);
      // gRFC A29: a server needs its own identity, and a CA when it checks clients.
      if (!common.tlsCertificateProviderInstance) {
        fail(sub(p, 'common_tls_context'), 'an identity certificate provider instance is required');
      }
      if (requireClientCertificate && !common.caCertificateProviderInstance) {
        fail(sub(p, 'common_tls_context'), 'require_client_certificate needs a CA certificate provider instance');
      }
      if (boolOf(d.require_sni, false)) fail(sub(p, 'require_sni'), 'require_sni is not supported');
      return {
        name: ts.name,
        kind: 'downstream_tls',
        downstreamTls: { commonTlsContext: common, requireClientCertificate, requireSni: false },
      };
    }
    default:
      fail(p, `unsupported transport socket type ${any.type_url}`);
  }
}

function instance(
  i: { instance_name: string; certificate_name: string } | null | undefined,
  path: string,
): CertificateProviderInstance | undefined {
  if (!i) return undefined;
  if (!i.instance_name) fail(sub(path, 'instance_name'), 'must not be empty');
  return { instanceName: i.instance_name, certificateName: i.certificate_name };
}

const SAN_TYPES = [undefined, 'EMAIL', 'DNS', 'URI', 'IP_ADDRESS', 'OTHER_NAME'] as const;

function validationContext(
  v: envoy_extensions_transport_sockets_tls_v3_CertificateValidationContext,
  path: string,
): { ca: CertificateProviderInstance | undefined; system: boolean; sans: SanMatcher[] } {
  // gRFC A29: these validation features have no gRPC equivalent, so they are rejected
  // rather than silently weakening verification.
  if (v.verify_certificate_spki.length > 0) fail(sub(path, 'verify_certificate_spki'), 'is not supported');
  if (v.verify_certificate_hash.length > 0) fail(sub(path, 'verify_certificate_hash'), 'is not supported');
  if (v.require_signed_certificate_timestamp?.value) {
    fail(sub(path, 'require_signed_certificate_timestamp'), 'is not supported');
  }
  if (v.crl) fail(sub(path, 'crl'), 'is not supported');
  if (v.custom_validator_config) fail(sub(path, 'custom_validator_config'), 'is not supported');
  if (v.trusted_ca) fail(sub(path, 'trusted_ca'), 'is not supported; use ca_certificate_provider_instance');
  const sans: SanMatcher[] = [];
  for (let i = 0; i < v.match_typed_subject_alt_names.length; i++) {
    const m = v.match_typed_subject_alt_names[i]!;
    const p = `${sub(path, 'match_typed_subject_alt_names')}[${i}]`;
    const sanType = SAN_TYPES[m.san_type];
    if (sanType === undefined) fail(sub(p, 'san_type'), 'a SAN type is required');
    sans.push({ sanType, matcher: stringMatcher(m.matcher, sub(p, 'matcher')), oid: m.oid });
  }
  for (let i = 0; i < v.match_subject_alt_names.length; i++) {
    const p = `${sub(path, 'match_subject_alt_names')}[${i}]`;
    sans.push({ sanType: undefined, matcher: stringMatcher(v.match_subject_alt_names[i], p), oid: '' });
  }
  return {
    ca: instance(v.ca_certificate_provider_instance, sub(path, 'ca_certificate_provider_instance')),
    system: v.system_root_certs != null,
    sans,
  };
}

function commonTlsContext(
  c: envoy_extensions_transport_sockets_tls_v3_CommonTlsContext | null | undefined,
  path: string,
): CommonTlsContext {
  if (!c) fail(path, 'common_tls_context is required');
  if (c.tls_certificates.length > 0) fail(sub(path, 'tls_certificates'), 'inline certificates are not supported (gRFC A29)');
  if (c.tls_certificate_sds_secret_configs.length > 0) {
    fail(sub(path, 'tls_certificate_sds_secret_configs'), 'SDS is not supported (gRFC A29)');
  }
  if (c.tls_certificate_certificate_provider) fail(sub(path, 'tls_certificate_certificate_provider'), 'is not supported');
  // The current field first, then its deprecated twin.
  const identity =
    instance(c.tls_certificate_provider_instance, sub(path, 'tls_certificate_provider_instance')) ??
    instance(c.tls_certificate_certificate_provider_instance, sub(path, 'tls_certificate_certificate_provider_instance'));
  let ca: CertificateProviderInstance | undefined;
  let system = false;
  let sans: SanMatcher[] = [];
  switch (c.validation_context_type) {
    case 'validation_context':
      ({ ca, system, sans } = validationContext(c.validation_context!, sub(path, 'validation_context')));
      break;
    case 'combined_validation_context': {
      const cv = c.combined_validation_context!;
      const p = sub(path, 'combined_validation_context');
      if (cv.validation_context_sds_secret_config) fail(sub(p, 'validation_context_sds_secret_config'), 'SDS is not supported');
      if (cv.validation_context_certificate_provider) fail(sub(p, 'validation_context_certificate_provider'), 'is not supported');
      if (cv.default_validation_context) {
        ({ ca, system, sans } = validationContext(cv.default_validation_context, sub(p, 'default_validation_context')));
      }
      ca ??= instance(cv.validation_context_certificate_provider_instance, sub(p, 'validation_context_certificate_provider_instance'));
      break;
    }
    case 'validation_context_certificate_provider_instance':
      ca = instance(c.validation_context_certificate_provider_instance, sub(path, 'validation_context_certificate_provider_instance'));
      break;
    case 'validation_context_sds_secret_config':
      fail(sub(path, 'validation_context_sds_secret_config'), 'SDS is not supported (gRFC A29)');
    case 'validation_context_certificate_provider':
      fail(sub(path, 'validation_context_certificate_provider'), 'is not supported');
    default:
      break;
  }
  return {
    tlsCertificateProviderInstance: identity,
    caCertificateProviderInstance: ca,
    useSystemRootCerts: system,
    matchSubjectAltNames: sans,
    alpnProtocols: c.alpn_protocols.slice(),
  };
}
