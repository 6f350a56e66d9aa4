import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownedDir } from './stages/build.js';
import { describeExit, runSandboxed, SANDBOX_NICE, SANDBOX_UID, type SandboxOptions } from './sandbox.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'nci-sandbox-'));
  chmodSync(dir, 0o755); // the sandbox uid must reach its mounts
  ownedDir(path.join(dir, 'tmp'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function sh(script: string, extra: Partial<SandboxOptions> = {}): Promise<{ out: string; r: Awaited<ReturnType<typeof runSandboxed>> }> {
  let out = '';
  const r = await runSandboxed({
    name: 'sandbox-test',
    argv: ['sh', '-c', script],
    mounts: [],
    tmpDir: path.join(dir, 'tmp'),
    onOutput: (b) => (out += b.toString()),
    ...extra,
  });
  return { out, r };
}

describe('sandbox', () => {
  it('runs as the unprivileged sandbox uid with only /usr and its own dirs', async () => {
    const { out, r } = await sh('id -u; ls /; cat /etc/shadow; ls /root /home /var/cache/nommu-ci; echo x > /usr/x');
    expect(r.code).not.toBeNull();
    const lines = out.split('\n');
    if (process.getuid?.() === 0) expect(lines[0]).toBe(String(SANDBOX_UID));
    expect(out).toMatch(/\/etc\/shadow: No such file/);
    expect(out).toMatch(/\/root.*No such file/);
    expect(out).toMatch(/\/var\/cache\/nommu-ci.*No such file/);
    expect(out).toMatch(/Read-only file system/);
    expect(out).not.toMatch(/^(root|home|var)$/m);
  });

  it('has no network, not even the host loopback', async () => {
    let connected = false;
    const server = net.createServer((s) => {
      connected = true;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const { out } = await sh(`python3 -c 'import socket; socket.create_connection(("127.0.0.1", ${port}), 2); print("CONNECTED")'`);
    server.close();
    expect(out).not.toContain('CONNECTED');
    expect(out).toMatch(/Network is unreachable|Connection refused/);
    expect(connected).toBe(false);
  });

  it('kills the whole tree at the timeout, background children included, and removes its cgroups', async () => {
    const t0 = Date.now();
    const { r } = await sh('(sleep 300 &) ; sleep 300 & sleep 300', { timeoutMs: 500 });
    expect(r.killed).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(5000);
    const cg = '/sys/fs/cgroup/pids/nommu-ci';
    if (existsSync(cg)) expect(readdirSync(cg).filter((d) => d.startsWith('sandbox-test'))).toEqual([]);
  });

  it('is killed when its AbortSignal fires', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 300);
    const { r } = await sh('sleep 300', { signal: ctl.signal });
    expect(r.killed).toBe('abort');
  });

  it('enforces the file size limit', async () => {
    const { out, r } = await sh('head -c 4194304 /dev/zero > /tmp/big; echo rc=$?; ls -l /tmp/big', { limits: { fsizeBytes: 1 << 20 } });
    expect(r.code).toBe(0);
    expect(out).toMatch(/1048576/);
    expect(out).not.toMatch(/rc=0/);
  });

  it.runIf(process.getuid?.() === 0)('kills a process over the memory limit and says so', async () => {
    const { r } = await sh(`python3 -c 'x = bytearray(512 * 1024 * 1024); print(len(x))'`, { limits: { memoryBytes: 64 * 1024 * 1024 } });
    expect(r.code).not.toBe(0);
    expect(r.oom).toBe(true);
  });

  it('runs below the API in CPU priority', async () => {
    const { out } = await sh('cut -d" " -f19 /proc/self/stat');
    expect(SANDBOX_NICE).toBeGreaterThan(0);
    expect(Number(out.trim())).toBe(Math.min(19, os.getPriority() + SANDBOX_NICE));
  });

  it.runIf(existsSync('/proc/self/autogroup'))('runs in a scheduler autogroup of its own, niced like its processes', async () => {
    // Under autogroup scheduling, sessions share the CPU first: a niced process in a session at
    // nice 0 would still take as much as the API's whole session.
    const { out } = await sh('cat /proc/self/autogroup');
    const mine = readFileSync('/proc/self/autogroup', 'utf8');
    expect(out.trim()).toMatch(new RegExp(`^/autogroup-\\d+ nice ${SANDBOX_NICE}$`));
    expect(out.trim().split(' ')[0]).not.toBe(mine.trim().split(' ')[0]);
  });

  it('limits the number of processes', async () => {
    const { out } = await sh('i=0; while [ $i -lt 60 ]; do sleep 2 & i=$((i+1)); done 2>&1; echo started; wait', { limits: { nproc: 20 } });
    expect(out).toMatch(/fork|Resource temporarily unavailable/i);
  });
  it.runIf(process.getuid?.() === 0)('stops a fork bomb at the job\'s own process limit, says so, and leaves other jobs of the same uid forking', async () => {
    // The bomb holds its limit's worth of processes until it is killed; the other job starts its
    // 50 while the bomb is at its limit. Were the limit per uid (RLIMIT_NPROC), those would fail.
    const bomb = sh('b() { b & b & wait; }; b', { limits: { nproc: 200 }, timeoutMs: 8000 });
    await new Promise((r) => setTimeout(r, 3000));
    const other = await sh('i=0; while [ $i -lt 50 ]; do sleep 1 & i=$((i+1)); done 2>&1; wait; echo done', { limits: { nproc: 200 } });
    const { r } = await bomb;
    expect(r.forksRefused).toBeGreaterThan(0);
    expect(describeExit(r)).toMatch(/process limit reached: \d+ forks refused at 200 processes/);
    expect(other.out).not.toMatch(/fork|Resource temporarily unavailable/i);
    expect(other.out.trim()).toBe('done');
    expect(other.r.forksRefused).toBe(0);
  });

  it('loses nothing a non-blocking writer sends to its output file while we read slowly (UML console)', async () => {
    // Like UML's console: stdout set O_NONBLOCK, and a write the fd refuses is lost. Exit 3 on any refusal.
    const writer = [
      'import fcntl, os, sys',
      'fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK)',
      'for i in range(40000):',
      '    line = ("line %06d " % i + "x" * 60 + "\\n").encode()',
      '    try:',
      '        if os.write(1, line) != len(line): sys.exit(3)',
      '    except BlockingIOError:',
      '        sys.exit(3)',
    ].join('\n');
    const file = path.join(dir, 'out.log');
    let seen = '';
    let first = true;
    const r = await runSandboxed({
      name: 'sandbox-test',
      argv: ['python3', '-c', writer],
      mounts: [],
      tmpDir: path.join(dir, 'tmp'),
      outputFile: file,
      onOutput: (b) => {
        if (first) {
          first = false;
          const until = Date.now() + 300; // a slow reader: a pipe would fill (64 KiB) meanwhile
          while (Date.now() < until);
        }
        seen += b.toString();
      },
    });
    expect(r.code).toBe(0);
    const lines = seen.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(40000);
    expect(lines[39999]).toMatch(/^line 039999 /);
    expect(readFileSync(file, 'utf8')).toBe(seen);
  });
});
