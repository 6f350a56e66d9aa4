/** Lookups in a result tree that fail with the names that were there, for readable test failures. */
import type { TestNode } from '@nommu-ci/shared';

/** The test called `name` among `tests`. */
export function named(tests: readonly TestNode[], name: string, where = 'top level'): TestNode {
  const t = tests.find((x) => x.name === name);
  if (!t) throw new Error(`no test ${name} at ${where}: ${tests.map((x) => x.name).join(', ')}`);
  return t;
}

/** The child called `name` of `n`. */
export function child(n: TestNode | undefined, name: string): TestNode {
  return named(n?.children ?? [], name, n?.name ?? 'an absent test');
}
