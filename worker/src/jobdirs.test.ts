import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ownDir, ownerDead, ownerOf, reapJobDirs } from './jobdirs.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'nci-jobdirs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('reapJobDirs', () => {
  it("removes the directories of this host's dead workers and nothing else", async () => {
    const live = spawn('sleep', ['600'], { stdio: 'ignore' });
    const dead = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      const liveOwner = ownerOf(live.pid!)!;
      const deadOwner = ownerOf(dead.pid!)!;
      dead.kill('SIGKILL');
      await new Promise((r) => dead.once('exit', r));
      const [host, boot, pid, start] = [os.hostname(), ...liveOwner.slice(os.hostname().length + 1).split('.')];
      const names = {
        mine: path.basename(ownDir(root, 'job-a')),
        live: `job-b.${liveOwner}`,
        dead: `job-c.${deadOwner}`,
        // The same pid, started at another time: the pid was reused by another process.
        reused: `job-d.${host}.${boot}.${pid}.${Number(start) + 1}`,
        rebooted: `job-e.${host}.${boot === '00000000' ? '11111111' : '00000000'}.${pid}.${start}`,
        otherHost: `job-f.${host}x.${boot}.${dead.pid}.${start}`,
        spare: '.spare',
        unnamed: 'job-g',
      };
      for (const n of Object.values(names)) {
        mkdirSync(path.join(root, n, 'tmp'), { recursive: true });
        writeFileSync(path.join(root, n, 'tmp', 'f'), 'x');
      }
      expect(ownerDead(names.dead)).toBe(true);
      const removed = await reapJobDirs(root);
      expect(removed.sort()).toEqual([names.dead, names.reused, names.rebooted].sort());
      expect(readdirSync(root).sort()).toEqual([names.mine, names.live, names.otherHost, names.spare, names.unnamed].sort());
      for (const n of removed) expect(existsSync(path.join(root, n))).toBe(false);
    } finally {
      live.kill('SIGKILL');
    }
  });
});
