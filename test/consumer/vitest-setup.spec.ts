/**
 * docs/testing.md's Vitest setup (what `nest new` generates), exactly as the page shows it, in a fresh app with
 * the packed library: the documented test file passes under `npm test`, every documented test ran, and the app
 * type-checks.
 */
import { describeDocumentedSetup } from './support/documented-app.js';

describeDocumentedSetup({
  page: 'docs/testing.md',
  section: 'Running the tests with Vitest',
  otherSections: ['Running the tests with Jest'],
  reporterArgs: (file) => ['--reporter=json', `--outputFile=${file}`],
});
