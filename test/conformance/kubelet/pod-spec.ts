// TEST FIXTURE — never ships; no code under src/ knows it exists.
//
// What the process kubelet reads out of a Pod spec before it starts anything: the environment of each container
// (values, downward-API fieldRefs, Secret and ConfigMap keys, `$(VAR)` expansion) and the files of its volumes
// (secret, configMap, emptyDir, downwardAPI and projected — the service-account token included, through the
// TokenRequest API, which is how a pod of `wsgate controller` gets its in-cluster credentials).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type {
  CoreV1Api,
  V1Container,
  V1DownwardAPIVolumeFile,
  V1KeyToPath,
  V1ObjectFieldSelector,
  V1Pod,
  V1Volume,
} from '@kubernetes/client-node';

export interface PodAddresses {
  readonly podIP: string;
  readonly hostIP: string;
  /** Where the API server is reached from inside the pod (no kube-proxy here: the real address, not a ClusterIP). */
  readonly apiServer: { host: string; port: string };
}

/** The value of a downward-API fieldRef, as the kubelet computes it. */
export function fieldValue(pod: V1Pod, ref: V1ObjectFieldSelector, a: PodAddresses): string {
  const path = ref.fieldPath;
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m?.[1] !== undefined && m[2] !== undefined) {
    const map = m[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[m[2]] ?? '';
  }
  switch (path) {
    case 'metadata.name': return pod.metadata?.name ?? '';
    case 'metadata.namespace': return pod.metadata?.namespace ?? '';
    case 'metadata.uid': return pod.metadata?.uid ?? '';
    case 'metadata.labels': return formatMap(pod.metadata?.labels);
    case 'metadata.annotations': return formatMap(pod.metadata?.annotations);
    case 'spec.nodeName': return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP': case 'status.hostIPs': return a.hostIP;
    case 'status.podIP': case 'status.podIPs': return a.podIP;
    default: throw new Error(`unsupported fieldRef ${path}`);
  }
}

/** `key="value"` lines, sorted: the downward API's format for labels and annotations. */
function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {}).sort().map((k) => `${k}=${JSON.stringify(m?.[k] ?? '')}`).join('\n');
}

/** `$(VAR)` → the value of VAR if defined, `$$` → `$`; unknown references stay as written (the kubelet's rule). */
export function expand(s: string, env: Readonly<Record<string, string>>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => {
    if (name === undefined) return '$';
    return env[name] ?? all;
  });
}

async function secretData(api: CoreV1Api, namespace: string, name: string, optional: boolean): Promise<Record<string, Buffer> | undefined> {
  try {
    const s = await api.readNamespacedSecret({ name, namespace });
    const out: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64');
    for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = Buffer.from(v);
    return out;
  } catch (err) {
    if (optional) return undefined;
    throw new Error(`secret ${namespace}/${name}: ${describe(err)}`, { cause: err });
  }
}

async function configMapData(api: CoreV1Api, namespace: string, name: string, optional: boolean): Promise<Record<string, Buffer> | undefined> {
  try {
    const c = await api.readNamespacedConfigMap({ name, namespace });
    const out: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(c.data ?? {})) out[k] = Buffer.from(v);
    for (const [k, v] of Object.entries(c.binaryData ?? {})) out[k] = Buffer.from(v, 'base64');
    return out;
  } catch (err) {
    if (optional) return undefined;
    throw new Error(`configmap ${namespace}/${name}: ${describe(err)}`, { cause: err });
  }
}

function describe(err: unknown): string {
  const code = (err as { code?: number }).code;
  return code === undefined ? String(err) : `HTTP ${code}`;
}

/** The container's environment, in the order the kubelet builds it: envFrom, then env (later wins), then expanded. */
export async function containerEnv(api: CoreV1Api, pod: V1Pod, c: V1Container, a: PodAddresses): Promise<Record<string, string>> {
  const namespace = pod.metadata?.namespace ?? 'default';
  // The kubelet's service variables for the `kubernetes` Service point at its ClusterIP, which only kube-proxy makes
  // reachable; this cluster has none, so they name the API server's own address.
  const env: Record<string, string> = {
    KUBERNETES_SERVICE_HOST: a.apiServer.host,
    KUBERNETES_SERVICE_PORT: a.apiServer.port,
    KUBERNETES_SERVICE_PORT_HTTPS: a.apiServer.port,
    HOSTNAME: pod.metadata?.name ?? '',
  };
  for (const from of c.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    const data = from.secretRef
      ? await secretData(api, namespace, from.secretRef.name ?? '', from.secretRef.optional ?? false)
      : from.configMapRef
        ? await configMapData(api, namespace, from.configMapRef.name ?? '', from.configMapRef.optional ?? false)
        : undefined;
    for (const [k, v] of Object.entries(data ?? {})) env[prefix + k] = v.toString();
  }
  for (const e of c.env ?? []) {
    if (e.valueFrom === undefined) {
      env[e.name] = expand(e.value ?? '', env);
    } else if (e.valueFrom.fieldRef) {
      env[e.name] = fieldValue(pod, e.valueFrom.fieldRef, a);
    } else if (e.valueFrom.secretKeyRef) {
      const r = e.valueFrom.secretKeyRef;
      const v = (await secretData(api, namespace, r.name ?? '', r.optional ?? false))?.[r.key];
      if (v === undefined && !r.optional) throw new Error(`secret ${namespace}/${r.name ?? ''} has no key ${r.key}`);
      if (v !== undefined) env[e.name] = v.toString();
    } else if (e.valueFrom.configMapKeyRef) {
      const r = e.valueFrom.configMapKeyRef;
      const v = (await configMapData(api, namespace, r.name ?? '', r.optional ?? false))?.[r.key];
      if (v === undefined && !r.optional) throw new Error(`configmap ${namespace}/${r.name ?? ''} has no key ${r.key}`);
      if (v !== undefined) env[e.name] = v.toString();
    } else if (e.valueFrom.resourceFieldRef) {
      // No cgroups here: report the request or limit as written, else the node's capacity.
      const r = e.valueFrom.resourceFieldRef;
      const [kind, res] = r.resource.split('.') as ['limits' | 'requests', string];
      env[e.name] = String(c.resources?.[kind]?.[res] ?? (res === 'cpu' ? '2' : '0'));
    }
  }
  return env;
}

/**
 * Writes the files of every volume of the pod under `dir/<volume name>/`, and returns the directory per volume name.
 * Volume kinds it does not know make the pod fail to start with a message naming them.
 */
export async function materializeVolumes(api: CoreV1Api, pod: V1Pod, dir: string, a: PodAddresses): Promise<Map<string, string>> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const out = new Map<string, string>();
  for (const v of pod.spec?.volumes ?? []) {
    const vdir = join(dir, v.name);
    mkdirSync(vdir, { recursive: true });
    await writeVolume(api, pod, namespace, v, vdir, a);
    out.set(v.name, vdir);
  }
  return out;
}

async function writeVolume(api: CoreV1Api, pod: V1Pod, namespace: string, v: V1Volume, vdir: string, a: PodAddresses): Promise<void> {
  if (v.emptyDir) return;
  if (v.secret) {
    const data = await secretData(api, namespace, v.secret.secretName ?? '', v.secret.optional ?? false);
    writeKeys(vdir, data ?? {}, v.secret.items);
  } else if (v.configMap) {
    const data = await configMapData(api, namespace, v.configMap.name ?? '', v.configMap.optional ?? false);
    writeKeys(vdir, data ?? {}, v.configMap.items);
  } else if (v.downwardAPI) {
    writeDownward(vdir, pod, v.downwardAPI.items ?? [], a);
  } else if (v.projected) {
    for (const s of v.projected.sources ?? []) {
      if (s.secret) writeKeys(vdir, (await secretData(api, namespace, s.secret.name ?? '', s.secret.optional ?? false)) ?? {}, s.secret.items);
      else if (s.configMap) writeKeys(vdir, (await configMapData(api, namespace, s.configMap.name ?? '', s.configMap.optional ?? false)) ?? {}, s.configMap.items);
      else if (s.downwardAPI) writeDownward(vdir, pod, s.downwardAPI.items ?? [], a);
      else if (s.serviceAccountToken) {
        const t = s.serviceAccountToken;
        const tr = await api.createNamespacedServiceAccountToken({
          name: pod.spec?.serviceAccountName ?? 'default',
          namespace,
          body: {
            spec: {
              audiences: t.audience ? [t.audience] : [],
              expirationSeconds: t.expirationSeconds ?? 3600,
              boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' },
            },
          },
        });
        writeFile(vdir, t.path, tr.status?.token ?? '');
      } else {
        throw new Error(`projected volume ${v.name}: unsupported source ${Object.keys(s).join(',')}`);
      }
    }
  } else {
    const kind = Object.keys(v).filter((k) => k !== 'name').join(',');
    throw new Error(`volume ${v.name}: kind ${kind} is not supported by the process kubelet`);
  }
}

function writeKeys(vdir: string, data: Record<string, Buffer>, items: V1KeyToPath[] | undefined): void {
  if (items === undefined || items.length === 0) {
    for (const [k, v] of Object.entries(data)) writeFile(vdir, k, v);
    return;
  }
  for (const it of items) {
    const v = data[it.key];
    if (v !== undefined) writeFile(vdir, it.path, v);
  }
}

function writeDownward(vdir: string, pod: V1Pod, items: V1DownwardAPIVolumeFile[], a: PodAddresses): void {
  for (const it of items) {
    if (it.fieldRef) writeFile(vdir, it.path, fieldValue(pod, it.fieldRef, a));
  }
}

function writeFile(vdir: string, path: string, data: string | Buffer): void {
  const p = join(vdir, path);
  if (!p.startsWith(vdir + '/')) throw new Error(`volume path ${path} leaves its volume`);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data, { mode: 0o644 });
}
