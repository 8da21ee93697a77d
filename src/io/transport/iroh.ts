/** The Iroh binding, loaded once for the transport's files. */

import { createRequire } from 'node:module';
import type * as Iroh from '@number0/iroh/index.js';

// The package's `main` names a file that does not exist; its index.js at the root is the real entry.
// Requiring it by path also avoids Node's DEP0128 warning.
export const iroh = createRequire(import.meta.url)('@number0/iroh/index.js') as typeof Iroh;

/**
 * Closes `ep`, waiting at most `waitMs` for it: true when it closed within the wait. Its
 * connections' close frames go out at once; what the binding's close then waits for is each
 * peer's answer, which a peer that is gone never sends (about 3 s: three probe timeouts of a
 * connection with no round-trip time yet). The close goes on in the background; an error of it
 * goes to `onError`.
 */
export async function closeEndpointWithin(ep: Iroh.Endpoint, waitMs: number, onError?: (e: unknown) => void): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const closed = ep.close().then(
    () => true,
    (e: unknown) => {
      onError?.(e);
      return true;
    },
  );
  const waited = new Promise<false>((r) => (timer = setTimeout(() => r(false), waitMs)));
  const done = await Promise.race([closed, waited]);
  clearTimeout(timer);
  return done;
}
