// Adds lock entries for optional platform binaries this machine's registry
// mirror does not serve (e.g. @unrs/resolver-binding-darwin-x64, pulled in by
// Jest 30). `npm install` here leaves them out of package-lock.json, and
// `npm ci` then refuses the lock as out of sync. Each added entry carries the
// os/cpu/libc read off its napi-rs style name, so npm skips it on this machine.
// Run after any `npm install` that rewrites the lock: node .ci/complete-lockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const OS = ['android', 'darwin', 'freebsd', 'linux', 'openharmony', 'win32'];
const CPU = { 'arm-eabi': 'arm', 'arm-gnueabihf': 'arm', 'arm-musleabihf': 'arm', arm64: 'arm64', x64: 'x64', ia32: 'ia32', loong64: 'loong64', ppc64: 'ppc64', riscv64: 'riscv64', s390x: 's390x' };

function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const osIndex = parts.findIndex((part) => OS.includes(part));
  if (osIndex < 0) return undefined;
  const rest = parts.slice(osIndex + 1).join('-');
  const cpuKey = Object.keys(CPU)
    .sort((a, b) => b.length - a.length)
    .find((key) => rest === key || rest.startsWith(`${key}-`));
  if (cpuKey === undefined) return undefined;
  const platform = { os: [parts[osIndex]], cpu: [CPU[cpuKey]] };
  if (parts[osIndex] === 'linux') platform.libc = [/musl/.test(rest) ? 'musl' : 'glibc'];
  return platform;
}

const lockPath = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const added = [];
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key] !== undefined || lock.packages[`${path}/${key}`] !== undefined) continue;
    const platform = platformOf(name);
    if (platform === undefined || !/^\d+\.\d+\.\d+/.test(version)) continue;
    lock.packages[key] = { version, ...(entry.dev ? { dev: true } : {}), optional: true, ...platform };
    added.push(`${name}@${version}`);
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
console.log(added.length === 0 ? 'lock already complete' : `added ${added.length} platform entries:\n  ${added.join('\n  ')}`);
