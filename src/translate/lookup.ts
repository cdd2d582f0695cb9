// Lookups of the objects routes refer to (Services, their EndpointSlices, Secrets), built once per translation.
// Keys are `namespace/name`; an object without a namespace is in `default`, as kubectl would put it.
import type { EndpointSlice, ObjectMeta, Secret, Service } from '../api/types.ts';
import type { Snapshot } from './snapshot.ts';
import { compareStrings } from './hostnames.ts';

/** The label an EndpointSlice carries to name its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export function objectKey(metadata: ObjectMeta | undefined): string {
  return `${metadata?.namespace || 'default'}/${metadata?.name ?? ''}`;
}

export class Lookup {
  readonly #services = new Map<string, Service>();
  readonly #slices = new Map<string, EndpointSlice[]>();
  readonly #secrets = new Map<string, Secret>();

  constructor(s: Snapshot) {
    // A name listed twice (possible in files, never in a cluster): the first one wins.
    for (const svc of s.services) if (!this.#services.has(objectKey(svc.metadata))) this.#services.set(objectKey(svc.metadata), svc);
    for (const sec of s.secrets) if (!this.#secrets.has(objectKey(sec.metadata))) this.#secrets.set(objectKey(sec.metadata), sec);
    for (const slice of s.endpointSlices) {
      const service = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
      if (typeof service !== 'string' || service === '') continue;
      const key = `${slice.metadata?.namespace || 'default'}/${service}`;
      const list = this.#slices.get(key) ?? [];
      list.push(slice);
      this.#slices.set(key, list);
    }
    // Slices are read in name order, so that the result never depends on the order they were listed in.
    for (const list of this.#slices.values()) {
      list.sort((a, b) => compareStrings(a.metadata?.name ?? '', b.metadata?.name ?? ''));
    }
  }

  service(namespace: string, name: string): Service | undefined {
    return this.#services.get(`${namespace}/${name}`);
  }

  endpointSlices(namespace: string, service: string): readonly EndpointSlice[] {
    return this.#slices.get(`${namespace}/${service}`) ?? [];
  }

  secret(namespace: string, name: string): Secret | undefined {
    return this.#secrets.get(`${namespace}/${name}`);
  }
}
