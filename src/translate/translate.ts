// translate(snapshot) → { table, statuses }: the pure core. No sockets, no logger, no metrics, no clock; the same
// snapshot gives the same result, whatever order its objects are listed in.
//
//   1. Index what routes refer to (Services, EndpointSlices, Secrets).
//   2. Translate each object on its own — selected Ingresses, WebSocketRoutes, TCPTunnels — into claims (routes,
//      certificates, tunnels), recording problems on the object's report. Bad input is data: it becomes a
//      condition, and one bad object never takes the others down (even a bug here only fails that object).
//   3. Settle between objects: route conflicts and precedence, certificate hostnames, tunnel ports
//      (precedence.ts, certificates.ts). Losers are told on their reports.
//   4. Assemble the table in RoutingTable order, turn reports into statuses (sorted by kind, namespace, name),
//      and deep-freeze everything.
// [issue 14] Gateway API objects are translated beside them (gateway-api.ts) into listener ports and tunnels of the
// same table, and statuses of their own (TranslateResult.gatewayAPI).
import type { RoutingTable } from '../model/table.ts';
import { freezeTable } from '../model/table.ts';
import type { CertificateClaim } from './certificates.ts';
import { buildCertificates } from './certificates.ts';
import { ObjectReport, compareStatuses } from './conditions.ts';
import type { Context, Contribution } from './context.ts';
import { hasGatewayAPI, translateGatewayAPI } from './gateway-api.ts';
import { selectIngresses, translateIngress } from './ingress.ts';
import { Lookup } from './lookup.ts';
import {
  buildVirtualHosts,
  resolvePassthrough,
  resolveRouteConflicts,
  resolveTunnels,
  type PassthroughClaim,
  type RouteClaim,
  type TunnelClaim,
} from './precedence.ts';
import type { Snapshot, TranslateResult } from './snapshot.ts';
import { translateTCPTunnel } from './tcptunnel.ts';
import { translateWebSocketRoute } from './websocketroute.ts';

export function translate(s: Snapshot): TranslateResult {
  const ctx: Context = { lookup: new Lookup(s), certificates: new Map() };
  const reports: ObjectReport[] = [];
  const routes: RouteClaim[] = [];
  const certificates: CertificateClaim[] = [];
  const tunnels: TunnelClaim[] = [];
  const passthrough: PassthroughClaim[] = [];

  const run = (report: ObjectReport, translateObject: () => Contribution): void => {
    reports.push(report);
    let contribution: Contribution;
    try {
      contribution = translateObject();
    } catch (err) {
      report.notAccepted('Invalid', `could not be translated: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    routes.push(...contribution.routes);
    certificates.push(...contribution.certificates);
    tunnels.push(...contribution.tunnels);
    passthrough.push(...contribution.passthrough);
  };

  for (const ing of selectIngresses(s)) {
    const report = new ObjectReport('Ingress', ing.metadata);
    run(report, () => translateIngress(ing, report, ctx));
  }
  for (const r of s.webSocketRoutes) {
    const report = new ObjectReport('WebSocketRoute', r.metadata);
    run(report, () => translateWebSocketRoute(r, report, ctx));
  }
  for (const t of s.tcpTunnels) {
    const report = new ObjectReport('TCPTunnel', t.metadata);
    run(report, () => translateTCPTunnel(t, report, ctx));
  }

  // [issue 14] Gateway API: listener ports of their own, and tunnels beside TCPTunnels' (on ports TCPTunnels do not
  // take: a Gateway tunnel on a TCPTunnel's port is left out, the TCPTunnel keeps it).
  const gatewayAPI = hasGatewayAPI(s) ? translateGatewayAPI(s, ctx.lookup, ctx.certificates) : undefined;
  const passthroughRoutes = resolvePassthrough(passthrough);
  const ownTunnels = resolveTunnels(tunnels);
  const tunnelPorts = new Set(ownTunnels.map((t) => t.port));
  const gatewayTunnels = (gatewayAPI?.tunnels ?? []).filter((t) => !tunnelPorts.has(t.port));
  const table: RoutingTable = {
    virtualHosts: buildVirtualHosts(resolveRouteConflicts(routes)),
    certificates: buildCertificates(certificates),
    tunnels: gatewayTunnels.length === 0 ? ownTunnels : [...ownTunnels, ...gatewayTunnels].sort((a, b) => a.port - b.port || Number(a.sniHostnames.length === 0) - Number(b.sniHostnames.length === 0)),
    // Absent unless some Ingress asks for ssl-passthrough, so that other tables are as they were.
    ...(passthroughRoutes.length > 0 ? { passthrough: passthroughRoutes } : {}),
    ...(gatewayAPI !== undefined && gatewayAPI.listeners.length > 0 ? { listeners: gatewayAPI.listeners } : {}),
  };
  const statuses = reports.map((r) => r.toStatus()).sort(compareStatuses);
  return freezeTable({ table, statuses, ...(gatewayAPI !== undefined ? { gatewayAPI: gatewayAPI.statuses } : {}) });
}
