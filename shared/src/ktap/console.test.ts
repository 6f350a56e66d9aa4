import { describe, expect, it } from 'vitest';
import { KtapExtractor, extractKtap } from './console.js';

const feed = (x: KtapExtractor, lines: string[]): string[] => lines.flatMap((l) => x.push(l));

describe('KtapExtractor', () => {
  it('drops everything before the version line', () => {
    const x = new KtapExtractor();
    expect(x.push('Linux version 7.2.12 (root@vm)')).toEqual([]);
    expect(x.push('ok 1 looks like TAP but is boot noise')).toEqual([]);
    expect(x.found).toBe(false);
    expect(x.push('KTAP version 1')).toEqual(['KTAP version 1']);
    expect(x.found).toBe(true);
    expect(x.push('1..1')).toEqual(['1..1']);
  });

  it('strips printk timestamps by shape, keeps the KTAP indentation, leaves unstamped lines alone', () => {
    const { lines } = extractKtap([
      '[    0.060000] printk: console [mc-1] enabled',
      '[    0.060000] KTAP version 1',
      '[    0.061000] 1..1',
      '[    0.062000]     # Subtest: s',
      '[99999.062000]     ok 1 a',
      '[100000.062000]     ok 2 b',
      'a host line without a timestamp',
      '[    0.070000] ok 1 s',
    ]);
    expect(lines).toEqual(['KTAP version 1', '1..1', '    # Subtest: s', '    ok 1 a', '    ok 2 b', 'a host line without a timestamp', 'ok 1 s']);
  });

  it('strips the caller id and the log level too (CONFIG_PRINTK_CALLER, /dev/kmsg style)', () => {
    const { lines } = extractKtap(['<6>[    0.060000][    T1] TAP version 14', '<6>[    0.060000][    T1] \t# Subtest: s', '<6>[    0.060000][  C0] \tok 1 a']);
    expect(lines).toEqual(['TAP version 14', '\t# Subtest: s', '\tok 1 a']);
  });

  it('strips any other prefix the version line had, like kunit_tool', () => {
    const { lines } = extractKtap(['boot noise', 'console: KTAP version 1', 'console: 1..1', 'console:     ok 1 a', 'other: line']);
    expect(lines).toEqual(['KTAP version 1', '1..1', '    ok 1 a', 'other: line']);
    // Whitespace prefix: an indented log (kunit_tool_test.py's inline examples).
    expect(extractKtap(['\t\tKTAP version 1', '\t\t1..1', '\t\t\tok 1 a', 'x']).lines).toEqual(['KTAP version 1', '1..1', '\tok 1 a', 'x']);
  });

  it('handles CRLF consoles', () => {
    expect(extractKtap(['KTAP version 1\r\n', '1..1\r', 'ok 1 a\r\n']).lines).toEqual(['KTAP version 1', '1..1', 'ok 1 a']);
  });

  it('stops at the normal end markers without a crash', () => {
    for (const end of ['reboot: System halted', 'reboot: Restarting system', 'reboot: Power down', 'List of all partitions:']) {
      const x = new KtapExtractor();
      expect(feed(x, ['KTAP version 1', '1..0', end, 'ok 1 after the end'])).toEqual(['KTAP version 1', '1..0']);
      expect(x.crash).toBeNull();
      expect(x.ended).toBe(true);
    }
  });

  it('stops at a panic and remembers it', () => {
    const x = new KtapExtractor();
    const out = feed(x, [
      'KTAP version 1',
      '1..1',
      '    ok 1 a',
      'RIP: 0033:list_test_list_move+0xac/0x250',
      'Kernel panic - not syncing: Segfault with no mm',
      'Call Trace:',
      '    ok 2 b',
    ]);
    expect(out).toEqual(['KTAP version 1', '1..1', '    ok 1 a', 'RIP: 0033:list_test_list_move+0xac/0x250']);
    expect(x.crash).toBe('Kernel panic - not syncing: Segfault with no mm');
    expect(x.ended).toBe(true);
  });

  it('an oops is remembered but extraction goes on (KUnit may survive a fault); a later panic keeps the first line', () => {
    const x = new KtapExtractor();
    const out = feed(x, [
      '[    1.000000] KTAP version 1',
      '[    1.000001] BUG: kernel NULL pointer dereference, address: 0000000000000000',
      '[    1.000002]     # case: try faulted: last line seen lib/x.c:10',
      '[    1.000003]     not ok 1 case',
      '[    1.000004] Kernel panic - not syncing: Fatal exception',
    ]);
    expect(out).toEqual([
      'KTAP version 1',
      'BUG: kernel NULL pointer dereference, address: 0000000000000000',
      '    # case: try faulted: last line seen lib/x.c:10',
      '    not ok 1 case',
    ]);
    expect(x.crash).toBe('BUG: kernel NULL pointer dereference, address: 0000000000000000');
  });

  it('knows the usual ways a kernel reports a crash or a hang', () => {
    for (const line of [
      'kernel BUG at mm/slub.c:123!',
      'Oops: general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP',
      'Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000',
      'Kernel mode fault at addr 0x0, ip 0x6003a1b2',
      'INFO: task kunit_try_catch:35 blocked for more than 120 seconds.',
      'watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kunit_try_catch:35]',
    ]) {
      const x = new KtapExtractor();
      feed(x, ['KTAP version 1', line]);
      expect(x.crash, line).toBe(line);
    }
    const ok = new KtapExtractor();
    feed(ok, ['KTAP version 1', 'WARNING: lib/math/int_log.c:63 at intlog2+0x81/0x90, CPU#0: kunit_try_catch/299', '# Debug: bugs fixed']);
    expect(ok.crash).toBeNull();
  });

  it('a panic before any KTAP is a crash with nothing extracted', () => {
    const x = new KtapExtractor();
    expect(feed(x, ['[    0.1] Kernel panic - not syncing: Out of memory and no killable processes...', 'KTAP version 1'])).toEqual([]);
    expect(x.crash).toBe('Kernel panic - not syncing: Out of memory and no killable processes...');
    expect(x.found).toBe(false);
  });

  it('the old no-rootfs VFS panic ends extraction and counts as a crash (it can cut tests short)', () => {
    const x = new KtapExtractor();
    feed(x, ['TAP version 14', '1..1', 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(98,0)', 'ok 1 a']);
    expect(x.crash).toBe('Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(98,0)');
    expect(x.ended).toBe(true);
  });

  it('passes on the kunit executor’s complaints before the version line, as kunit_tool does', () => {
    expect(extractKtap(['[    0.5] kunit executor: filter failed: -22', 'noise']).lines).toEqual(['kunit executor: filter failed: -22']);
  });
});
