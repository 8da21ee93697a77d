/** The Iroh binding, loaded once for the transport's files. */

import { createRequire } from 'node:module';
import type * as Iroh from '@number0/iroh/index.js';

// The package's `main` names a file that does not exist; its index.js at the root is the real entry.
// Requiring it by path also avoids Node's DEP0128 warning.
export const iroh = createRequire(import.meta.url)('@number0/iroh/index.js') as typeof Iroh;
