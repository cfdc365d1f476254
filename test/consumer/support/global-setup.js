/**
 * Consumer tests' Jest global setup: one directory per run for the packed library, handed to every spec file
 * through the environment, so the first spec that needs the tarball packs it and the others reuse it.
 * (Plain JS: Jest loads global setup outside its ESM module mapping, where the .ts helpers' imports do not resolve.)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function makePackDirectory() {
  // Test workers and in-band test files see the environment of the process that ran the global setup.
  process.env.NEST_WS_ROUTES_PACK_DIR = mkdtempSync(join(tmpdir(), 'nest-websocket-routes-pack-'));
}
