/**
 * Consumer tests (test/consumer/): the packed library installed into fresh apps outside the repository, as users
 * get it. Slow (npm pack and installs), so not part of `npm test`: run with `npm run test:consumer`.
 */
import base from './jest.config.js';

export default {
  ...base,
  roots: ['<rootDir>/test/consumer'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: '<rootDir>/test/consumer/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/consumer/support/global-teardown.ts',
  // Each spec installs packages and compiles an app: one at a time is faster than sharing 2 cores.
  maxWorkers: 1,
  testTimeout: 300000,
};
