/**
 * Consumer tests (test/consumer/): the packed library installed into fresh apps outside the repository, as users
 * get it. Slow (npm pack and installs), so not part of `npm test`: run with `npm run test:consumer`.
 */
import base from './jest.config.js';

export default {
  ...base,
  roots: ['<rootDir>/test/consumer'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: '<rootDir>/test/consumer/support/global-setup.js',
  globalTeardown: '<rootDir>/test/consumer/support/global-teardown.js',
  // One spec at a time: each installs packages and compiles an app (faster than sharing 2 cores), and the first
  // to need the tarball packs it into the run's directory while no other spec is packing (npm pack runs prepare,
  // which rebuilds dist/).
  maxWorkers: 1,
  testTimeout: 300000,
};
