/**
 * The suites and tests a KUnit kernel would run, from its own listing (`kunit.action=list`:
 * a `KTAP version 1` header, then `suite.test` per line, in the order the suites run), as
 * kunit.py's _list_tests and _suites_from_test_list read it.
 */

export interface ListedSuite {
  name: string;
  tests: string[];
}

/** A suite or `suite.test` line: names have no spaces (a suite's may have dots: `util_macros.h`). */
const NAME_LINE = /^[A-Za-z0-9_][\w.+-]*$/;

/**
 * KTAP lines of a listing boot (KtapExtractor's output) → suites in run order. The kernel prints
 * each suite's name, then `suite.test` for each of its tests (lib/kunit/executor.c
 * kunit_exec_list_tests); a suite's tests are told from the next suite by the `suite.` prefix, not
 * by the first dot, since suite names may hold dots (kunit.py's own reader drops those suites).
 */
export function parseListing(ktapLines: readonly string[]): ListedSuite[] {
  const suites: ListedSuite[] = [];
  for (const raw of ktapLines) {
    const line = raw.trim();
    if (!NAME_LINE.test(line)) continue;
    const last = suites[suites.length - 1];
    if (last && line.startsWith(`${last.name}.`) && line.length > last.name.length + 1) last.tests.push(line.slice(last.name.length + 1));
    else suites.push({ name: line, tests: [] });
  }
  return suites;
}

/** kunit.py --list_tests prints one `suite.test` per line. */
export function listingLines(suites: readonly ListedSuite[]): string[] {
  return suites.flatMap((s) => s.tests.map((t) => `${s.name}.${t}`));
}
