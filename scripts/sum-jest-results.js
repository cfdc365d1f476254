/**
 * CI's closing line: reads the Jest JSON reports of every run (`--json --outputFile`), prints one line per run and
 * then `tests: N passed, M failed` over all of them; exits non-zero when a run failed, left no report or ran no test.
 *
 *   node scripts/sum-jest-results.js "main suite, Node 24, Nest lowest=report.json" ...
 */
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
for (const argument of process.argv.slice(2)) {
  const separator = argument.lastIndexOf('=');
  const [label, reportPath] = [argument.slice(0, separator), argument.slice(separator + 1)];
  let report;
  try {
    report = JSON.parse(readFileSync(reportPath, 'utf8'));
  } catch {
    // A run that crashed before Jest wrote its report counts as one failure, so it cannot pass unnoticed.
    console.log(`- ${label}: no report (the run did not finish)`);
    failed += 1;
    continue;
  }
  // A suite that failed to load has no failed tests of its own: count it as one.
  const runFailed = report.numFailedTests + report.numRuntimeErrorTestSuites;
  const noTest = report.numTotalTests === 0;
  console.log(`- ${label}: ${report.numPassedTests} passed, ${runFailed} failed${noTest ? ' (no test ran)' : ''}`);
  passed += report.numPassedTests;
  failed += runFailed + (noTest ? 1 : 0);
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
