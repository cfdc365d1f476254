/** Consumer tests' Jest global teardown: removes the run's pack directory and the tarball in it. */
import { rmSync } from 'node:fs';

export default function removePackDirectory() {
  const directory = process.env.NEST_WS_ROUTES_PACK_DIR;
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
}
