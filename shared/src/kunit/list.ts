/**
 * The suites and tests a KUnit kernel would run, from its own listing (`kunit.action=list`:
 * a `KTAP version 1` header, then `suite.test` per line, in the order the suites run), as
 * kunit.py's _list_tests and _suites_from_test_list read it.
 */

export interface ListedSuite {
  name: string;
  tests: string[];
}

const TEST_LINE = /^([^\s.]+)\.([^\s.]+)$/;

/** KTAP lines of a listing boot (KtapExtractor's output) → suites in run order. */
export function parseListing(ktapLines: readonly string[]): ListedSuite[] {
  const suites: ListedSuite[] = [];
  for (const raw of ktapLines) {
    const m = TEST_LINE.exec(raw.trim());
    if (!m) continue;
    const [, suite, test] = m as unknown as [string, string, string];
    const last = suites[suites.length - 1];
    if (last && last.name === suite) last.tests.push(test);
    else suites.push({ name: suite, tests: [test] });
  }
  return suites;
}

/** kunit.py --list_tests prints one `suite.test` per line. */
export function listingLines(suites: readonly ListedSuite[]): string[] {
  return suites.flatMap((s) => s.tests.map((t) => `${s.name}.${t}`));
}
