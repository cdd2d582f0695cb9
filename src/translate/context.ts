// What every kind translator is given, and what it hands back: claims, which precedence.ts and certificates.ts
// settle once every object has been read.
import type { CertificateClaim, LoadedCertificate } from './certificates.ts';
import type { Lookup } from './lookup.ts';
import type { PassthroughClaim, RouteClaim, TunnelClaim } from './precedence.ts';

export interface Context {
  readonly lookup: Lookup;
  /** Secrets already read in this translation, by `namespace/name`: each is parsed once. */
  readonly certificates: Map<string, LoadedCertificate>;
}

/** What one object asks for. Collected per object, so that an object that fails halfway contributes nothing. */
export interface Contribution {
  readonly routes: RouteClaim[];
  readonly certificates: CertificateClaim[];
  readonly tunnels: TunnelClaim[];
  readonly passthrough: PassthroughClaim[];
}

export function emptyContribution(): Contribution {
  return { routes: [], certificates: [], tunnels: [], passthrough: [] };
}
