// `npm run eval`: the rule engine of the shipped taxonomy on the labeled windows of eval/scenarios.yaml. Prints
// precision, recall and F1 per tag, overall (micro and macro), by kind (intent, risk), the review band and every
// error with the rules' explanations, and writes the numbers to bench/results/fusion-eval.json.
//
//   npm run eval                        (from the repository root)
//   npm run eval -- other-scenarios.yaml   (another labeled file, same format)
//
// It reports, it does not gate: the exit code is 0 whenever the evaluation ran, whatever the numbers
// (eval.test.ts holds the regression gate). A malformed scenario file or taxonomy exits 1 with every problem.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFusionRules } from '../src/rules-adapter.js';
import { evaluateScenarios, formatReport, loadScenarios } from './evaluate.js';

const RESULTS_DIR = new URL('../../../bench/results/', import.meta.url);
const RESULTS_FILE = new URL('fusion-eval.json', RESULTS_DIR);

try {
  const rules = await loadFusionRules();
  const path = process.argv[2];
  const scenarios = await loadScenarios(
    rules.taxonomy.tags.map((t) => t.id),
    path === undefined ? undefined : resolve(path),
  );
  const report = evaluateScenarios(rules, scenarios);
  console.log(formatReport(report));
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(
    RESULTS_FILE,
    `${JSON.stringify({ generatedAt: new Date().toISOString(), ...report }, null, 2)}\n`,
  );
  console.log(`\nwrote ${fileURLToPath(RESULTS_FILE)}`);
} catch (error) {
  console.error((error as Error).message);
  process.exitCode = 1;
}
