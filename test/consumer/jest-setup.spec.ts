/**
 * docs/testing.md's Jest setup, exactly as the page shows it, in a fresh app with the packed library: the
 * documented test file passes under `npm test`, every documented test ran, and the app type-checks.
 */
import { describeDocumentedSetup } from './support/documented-app.js';

describeDocumentedSetup({
  page: 'docs/testing.md',
  section: 'Running the tests with Jest',
  otherSections: ['Running the tests with Vitest'],
  reporterArgs: (file) => ['--json', `--outputFile=${file}`],
});
