/** Consumer tests' Jest global setup: packs the library once per run and hands the tarball to every spec file. */
import { packLibrary, TARBALL_ENV } from './packed-package.js';

export default async function packOncePerRun(): Promise<void> {
  // Workers inherit the environment of the process that ran the global setup.
  process.env[TARBALL_ENV] = await packLibrary();
}
