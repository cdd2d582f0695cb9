// TEST FIXTURE — never ships; no code under src/ knows it exists.
//
// LoadBalancer Services for the test cluster: what a cloud provider's load balancer (or MetalLB with kube-proxy)
// does in a real cluster, in the few lines a harness can afford. For each Service of type LoadBalancer it takes a
// free address of the pod network's block, adds it to the bridge, writes it to status.loadBalancer.ingress, and
// listens on it, on each TCP port of the Service, forwarding every connection to a ready endpoint of the Service's
// EndpointSlices (round robin) at the matching target port. Connections reach the endpoints from the node's address,
// as through a proxying load balancer. Services are polled every 500 ms.
import { execFileSync } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type V1Service } from '@kubernetes/client-node';
import type { PodNetwork } from './kubelet/network.ts';

export interface LoadBalancers {
  /** The address given to a Service (namespace/name), if any. */
  addressOf(service: string): string | undefined;
  stop(): Promise<void>;
}

interface Balancer {
  readonly ip: string;
  readonly servers: Map<string, Server>;
  readonly sockets: Set<Socket>;
  /** Ready endpoint addresses per Service port name, refreshed every poll. */
  endpoints: Map<string, { ips: string[]; port: number }>;
  next: number;
}

export function startLoadBalancers(kc: KubeConfig, network: PodNetwork, log: (line: string) => void = () => {}): LoadBalancers {
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const balancers = new Map<string, Balancer>();
  let stopped = false;

  const remove = async (key: string, b: Balancer): Promise<void> => {
    balancers.delete(key);
    for (const s of b.sockets) s.destroy();
    await Promise.all([...b.servers.values()].map((s) => new Promise((resolve) => s.close(resolve))));
    try {
      execFileSync('ip', ['addr', 'del', `${b.ip}/32`, 'dev', network.bridge], { stdio: 'ignore' });
    } catch {
      // the bridge is gone already
    }
    network.releaseAddress(b.ip);
    log(`load balancer ${key}: released ${b.ip}`);
  };

  const reconcile = async (svc: V1Service, b: Balancer, key: string): Promise<void> => {
    const ns = svc.metadata?.namespace ?? 'default';
    const slices = await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: `kubernetes.io/service-name=${svc.metadata?.name ?? ''}` });
    const endpoints = new Map<string, { ips: string[]; port: number }>();
    for (const sp of svc.spec?.ports ?? []) {
      const name = sp.name ?? '';
      const ips: string[] = [];
      let port = typeof sp.targetPort === 'number' ? sp.targetPort : sp.port;
      for (const s of slices.items) {
        const p = s.ports?.find((x) => (x.name ?? '') === name);
        if (p?.port === undefined) continue;
        port = p.port;
        for (const e of s.endpoints ?? []) if (e.conditions?.ready !== false) ips.push(...e.addresses);
      }
      endpoints.set(name, { ips, port });
    }
    b.endpoints = endpoints;
    const wanted = new Map((svc.spec?.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP').map((p) => [`${p.port}/${p.name ?? ''}`, p]));
    for (const [k, server] of b.servers) {
      if (!wanted.has(k)) {
        server.close();
        b.servers.delete(k);
      }
    }
    for (const [k, p] of wanted) {
      if (b.servers.has(k)) continue;
      const server = createServer((client) => {
        const ep = b.endpoints.get(p.name ?? '');
        const ip = ep && ep.ips.length > 0 ? ep.ips[b.next++ % ep.ips.length] : undefined;
        if (ep === undefined || ip === undefined) {
          client.destroy();
          return;
        }
        const upstream = connect({ host: ip, port: ep.port });
        b.sockets.add(client);
        b.sockets.add(upstream);
        const close = (): void => {
          client.destroy();
          upstream.destroy();
          b.sockets.delete(client);
          b.sockets.delete(upstream);
        };
        client.on('error', close).on('close', close);
        upstream.on('error', close).on('close', close);
        client.pipe(upstream).pipe(client);
      });
      server.on('error', (err) => log(`load balancer ${key} port ${p.port}: ${err.message}`));
      server.listen(p.port, b.ip);
      b.servers.set(k, server);
    }
  };

  const poll = async (): Promise<void> => {
    const list = await core.listServiceForAllNamespaces();
    const seen = new Set<string>();
    for (const svc of list.items) {
      if (svc.spec?.type !== 'LoadBalancer') continue;
      const key = `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;
      seen.add(key);
      let b = balancers.get(key);
      if (b === undefined) {
        const ip = network.allocateAddress();
        execFileSync('ip', ['addr', 'add', `${ip}/32`, 'dev', network.bridge], { stdio: 'ignore' });
        b = { ip, servers: new Map(), sockets: new Set(), endpoints: new Map(), next: 0 };
        balancers.set(key, b);
        log(`load balancer ${key}: ${ip}`);
      }
      await reconcile(svc, b, key);
      const ingress = svc.status?.loadBalancer?.ingress ?? [];
      if (ingress.length !== 1 || ingress[0]?.ip !== b.ip) {
        svc.status = { ...svc.status, loadBalancer: { ingress: [{ ip: b.ip, ipMode: 'Proxy' }] } };
        await core.replaceNamespacedServiceStatus({ name: svc.metadata?.name ?? '', namespace: svc.metadata?.namespace ?? '', body: svc });
      }
    }
    for (const [key, b] of balancers) if (!seen.has(key)) await remove(key, b);
  };

  const loop = (async () => {
    while (!stopped) {
      try {
        await poll();
      } catch (err) {
        log(`load balancers: ${String(err)}`);
      }
      await sleep(500);
    }
  })();

  return {
    addressOf: (service) => balancers.get(service)?.ip,
    async stop() {
      stopped = true;
      await loop;
      for (const [key, b] of [...balancers]) await remove(key, b);
    },
  };
}
