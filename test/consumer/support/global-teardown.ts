/** Consumer tests' Jest global teardown: removes the tarball the global setup packed. */
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TARBALL_ENV } from './packed-package.js';

export default async function removePackedTarball(): Promise<void> {
  const tarball = process.env[TARBALL_ENV];
  if (tarball !== undefined) await rm(dirname(tarball), { recursive: true, force: true });
}
