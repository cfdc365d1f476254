/** Jest in ESM mode (Nest 12 is ESM only): ts-jest compiles TypeScript, Node runs it with --experimental-vm-modules. */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  // test/consumer/ installs the packed library into fresh apps: its own config, `npm run test:consumer`.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/consumer/'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^nest-websocket-routes$': '<rootDir>/lib/index.ts',
    '^nest-websocket-routes/testing$': '<rootDir>/lib/testing/index.ts',
    '^nest-websocket-routes/redis$': '<rootDir>/lib/redis/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
  testTimeout: 30000,
  // ESM mode keeps every test file's module graph in its worker: on Node 24 and 26 the workers' heaps grew until
  // the 16 MiB and 24 MiB echo tests timed out late in a full run; a worker past this is replaced between files.
  workerIdleMemoryLimit: '800MB',
};
