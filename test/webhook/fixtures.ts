// Pod builders and injector options for the webhook tests.
import type { InjectOptions, Pod, PodContainer } from '../../src/webhook/mutate.ts';

export const injectOptions: InjectOptions = {
  image: 'registry.example/wsgate:test',
  resources: { requests: { cpu: '50m', memory: '64Mi' } },
};

export function appContainer(o: { name?: string; ports?: { name?: string; containerPort: number }[] } = {}): PodContainer & { image: string } {
  return { name: o.name ?? 'app', image: 'registry.example/chat:1', ports: o.ports ?? [{ name: 'http', containerPort: 8080 }] };
}

/** A Pod with one app container on port 8080 named `http`, and the given annotations. */
export function pod(annotations: Record<string, string> | undefined, o: { name?: string; containers?: PodContainer[]; initContainers?: PodContainer[] } = {}): Pod {
  return {
    metadata: { name: o.name ?? 'chat-0', ...(annotations ? { annotations } : {}) },
    spec: { containers: o.containers ?? [appContainer()], ...(o.initContainers ? { initContainers: o.initContainers } : {}) },
  };
}

/** `wsgate.io/inject: "true"` and the upstream port, plus `extra`. */
export function injectAnnotations(extra: Record<string, string> = {}, upstreamPort = '8080'): Record<string, string> {
  return { 'wsgate.io/inject': 'true', 'wsgate.io/upstream-port': upstreamPort, ...extra };
}
