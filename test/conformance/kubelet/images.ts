// TEST FIXTURE — never ships; no code under src/ knows it exists.
//
// What the process kubelet runs in place of a container image: a map from image to a function that turns the
// container spec into the argv of a local program. Keys are repositories (`registry.k8s.io/gateway-api/echo-basic`,
// any tag) or exact references (`repo:tag`, tried first). An image with no entry leaves its Pod Pending (container
// waiting, reason `ImageNotMapped`, and a Warning Event).
import type { V1Container } from '@kubernetes/client-node';

/** The host argv for a container, or an error message (the container then waits with reason `CommandNotMapped`). */
export type ImageCommand = (c: V1Container) => readonly string[] | { error: string };

export type ImageMap = ReadonlyMap<string, ImageCommand>;

/**
 * An image whose ENTRYPOINT is `entrypoint` and CMD `cmd`, with the container runtime's rules: `args` replace CMD;
 * a container `command` would name a path inside the image, so it must be one of `commands` (in-image path → host
 * argv), or the container cannot start.
 */
export function entrypoint(
  argv: readonly string[],
  o: { cmd?: readonly string[]; commands?: Readonly<Record<string, readonly string[]>> } = {},
): ImageCommand {
  return (c) => {
    if (c.command !== undefined && c.command.length > 0) {
      const [first = '', ...rest] = c.command;
      const host = o.commands?.[first];
      if (host === undefined) return { error: `command ${JSON.stringify(c.command)} names a path in the image that this kubelet does not map` };
      return [...host, ...rest, ...(c.args ?? [])];
    }
    return [...argv, ...(c.args ?? o.cmd ?? [])];
  };
}

/** A process that runs until it is killed and does nothing: for Pods that only need to be Running and Ready. */
export function placeholder(): ImageCommand {
  return () => ['sleep', 'infinity'];
}

/** The repository of an image reference: `registry.k8s.io/gateway-api/echo-basic:v1.5.1` → `registry.k8s.io/gateway-api/echo-basic`. */
export function repositoryOf(image: string): string {
  const at = image.indexOf('@');
  const ref = at >= 0 ? image.slice(0, at) : image;
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(0, colon) : ref;
}

export function lookupImage(map: ImageMap, image: string): ImageCommand | undefined {
  return map.get(image) ?? map.get(repositoryOf(image));
}
