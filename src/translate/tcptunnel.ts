// TCPTunnel → one tunnel claim. A tunnel is a single rule: any error in it rejects the whole object (Invalid).
// Unset knobs take DEFAULT_POLICY's values (idle 0 = never, connect 5 s, maxConnections 0 = unlimited, endpoint
// drain 10 s, onRemoval Close over 60 s, member by member) and proxyProtocol None. An L4 tunnel carries bytes, not
// frames: no WebSocket knob applies, and its drain and removal closes are FINs. SNI names are lower-cased,
// deduplicated and sorted as virtual hosts are. allowedSourceRanges/deniedSourceRanges: as a route's (issue 12).
import { PROXY_PROTOCOL_VERSIONS, type BackendRef, type ProxyProtocolVersion, type TCPTunnel } from '../api/types.ts';
import { DEFAULT_POLICY } from '../model/table.ts';
import { checkBackendRef, isPortNumber, resolveBackends } from './backends.ts';
import type { ObjectReport } from './conditions.ts';
import { emptyContribution, type Context, type Contribution } from './context.ts';
import { compareHostnames, normalizeHostname } from './hostnames.ts';
import { cidrList } from './edge-policy.ts';
import { applyOnRemoval, SpecReader } from './policy.ts';

export function translateTCPTunnel(t: TCPTunnel, report: ObjectReport, ctx: Context): Contribution {
  const out = emptyContribution();
  const spec = t.spec as unknown;
  if (spec === null || typeof spec !== 'object') {
    report.notAccepted('Invalid', 'spec: is required (the tunnel is not served)');
    return out;
  }
  const s = spec as Record<string, unknown>;
  const errors: string[] = [];
  if (!isPortNumber(s['port'])) errors.push('spec.port: must be an integer 1-65535');

  const sniHostnames: string[] = [];
  const sni = s['sniHostnames'];
  if (sni !== undefined && !Array.isArray(sni)) errors.push('spec.sniHostnames: must be a list');
  if (Array.isArray(sni)) {
    sni.forEach((h: unknown, i) => {
      const name = normalizeHostname(h);
      if (name === undefined) errors.push(`spec.sniHostnames[${i}]: ${JSON.stringify(h)} is not a DNS name or *. wildcard`);
      else if (!sniHostnames.includes(name)) sniHostnames.push(name);
    });
  }

  const backends = s['backends'];
  if (!Array.isArray(backends) || backends.length === 0) errors.push('spec.backends: at least one backend is required');
  else backends.forEach((b: unknown, j) => errors.push(...checkBackendRef(b, `spec.backends[${j}]`)));

  const proxyProtocol = s['proxyProtocol'] ?? 'None';
  if (!PROXY_PROTOCOL_VERSIONS.includes(proxyProtocol as ProxyProtocolVersion)) {
    errors.push(`spec.proxyProtocol: must be one of ${PROXY_PROTOCOL_VERSIONS.join(', ')}`);
  }
  const seconds = (key: string, fallback: number): number => {
    const v = s[key];
    if (v === undefined) return fallback;
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
    errors.push(`spec.${key}: must be a number of seconds >= 0`);
    return fallback;
  };
  const idleTimeoutSeconds = seconds('idleTimeoutSeconds', DEFAULT_POLICY.idleTimeoutSeconds);
  const connectTimeoutSeconds = seconds('connectTimeoutSeconds', DEFAULT_POLICY.connectTimeoutSeconds);
  let maxConnections = DEFAULT_POLICY.maxConnections;
  if (s['maxConnections'] !== undefined) {
    if (Number.isInteger(s['maxConnections']) && (s['maxConnections'] as number) >= 0) maxConnections = s['maxConnections'] as number;
    else errors.push('spec.maxConnections: must be an integer >= 0');
  }
  const r = new SpecReader(s, 'spec', errors);
  const endpointDrainSeconds = r.wholeSeconds('endpointDrainSeconds', DEFAULT_POLICY.endpointDrainSeconds);
  const onRemoval = applyOnRemoval(DEFAULT_POLICY.onRemoval, r.nested('onRemoval'));
  const allowedSourceRanges = cidrList(r, 'allowedSourceRanges', []);
  const deniedSourceRanges = cidrList(r, 'deniedSourceRanges', []);

  if (errors.length > 0 || !Array.isArray(backends)) {
    for (const e of errors) report.notAccepted('Invalid', `${e} (the tunnel is not served)`);
    return out;
  }
  const refs = (backends as BackendRef[]).map((ref, j) => ({
    ref,
    fields: { service: `spec.backends[${j}].service`, port: `spec.backends[${j}].port` },
  }));
  out.tunnels.push({
    owner: report,
    tunnel: {
      id: `TCPTunnel/${report.key}`,
      route: report.key,
      port: s['port'] as number,
      sniHostnames: sniHostnames.sort(compareHostnames),
      backends: resolveBackends(refs, report.namespace, ctx.lookup, report),
      proxyProtocol: proxyProtocol as ProxyProtocolVersion,
      idleTimeoutSeconds,
      connectTimeoutSeconds,
      maxConnections,
      endpointDrainSeconds,
      onRemoval,
      ...(allowedSourceRanges.length > 0 ? { allowedSourceRanges } : {}),
      ...(deniedSourceRanges.length > 0 ? { deniedSourceRanges } : {}),
    },
  });
  return out;
}
