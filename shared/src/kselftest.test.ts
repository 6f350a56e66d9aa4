import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { KselftestJobRequest } from './kselftest.js';

const ok = (v: unknown): boolean => Value.Check(KselftestJobRequest, v);

describe('KselftestJobRequest', () => {
  it('accepts targets, tests, and the common fields', () => {
    expect(ok({ kind: 'kselftest', targets: ['timers'] })).toBe(true);
    expect(ok({ kind: 'kselftest', targets: ['mm', 'drivers/net'], tests: ['mm:mremap_test', 'drivers/net:foo.sh'], mmu: true, timeout_s: 600, test_timeout_s: 30, kconfig_add: ['CONFIG_DEBUG_VM=y'], kernel: 'debian-7.2', patch: 'diff' })).toBe(true);
  });

  it('rejects paths out of the selftests tree, bad test names, unknown fields', () => {
    for (const t of ['..', '../x', 'mm/../..', '/mm', 'mm/', 'Mm', 'mm/./x', '']) expect(ok({ kind: 'kselftest', targets: [t] }), t).toBe(false);
    for (const t of ['mm', 'mm:', ':x', 'mm:../x', 'mm:a/b', 'mm:a b', '../x:y', 'mm:.hidden']) expect(ok({ kind: 'kselftest', targets: ['mm'], tests: [t] }), t).toBe(false);
    expect(ok({ kind: 'kselftest', targets: [] })).toBe(false);
    expect(ok({ kind: 'kselftest', targets: ['mm'], extra: 1 })).toBe(false);
    expect(ok({ kind: 'kselftest', targets: ['mm'], kconfig_add: ['CONFIG_X=y; rm'] })).toBe(false);
  });
});
