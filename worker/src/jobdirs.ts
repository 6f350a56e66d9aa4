/**
 * Job directories name the worker process that owns them: `<job id>.<host>.<boot>.<pid>.<start>`
 * (boot: the first 8 hex digits of the kernel's boot id; start: the process's start time in clock
 * ticks since boot, from /proc/<pid>/stat). The name is made by one mkdir, so there is no moment
 * when a directory exists without its owner, and a hostile job cannot rewrite it (the directory
 * itself belongs to the worker; the sandbox only gets its subdirectories).
 *
 * A SIGKILLed worker leaves its directories behind. They are removed by the next worker that
 * starts on the same cache directory (reapJobDirs), and by the worker that runs the job's next
 * attempt, wherever its own cache is, when the lost attempt ran on the same host (the store
 * lists each attempt's directory). A directory is taken for dead only when its owner is
 * provably gone: same host name and a different boot, or no process with that pid and start
 * time. Another host's directories, on a shared volume, are that host's to remove. So workers
 * that share a cache directory from different pid namespaces (containers on one volume) need
 * host names of their own, as containers get by default: with one name between them, a pid
 * from another namespace would look dead here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeTree } from './exec.js';

const HOST = os.hostname();
const BOOT = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '').slice(0, 8);

/** The start time of process `pid` (clock ticks since boot), or null when there is no such process. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses; starttime is field 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Process `pid` of this host as an owner, `<host>.<boot>.<pid>.<start>` (null if there is no such process). */
export function ownerOf(pid: number): string | null {
  const start = startTime(pid);
  return start === null ? null : `${HOST}.${BOOT}.${pid}.${start}`;
}

const OWNER = ownerOf(process.pid)!;

/** The directory this process uses for `key` (a job id) under `parent`. */
export const ownDir = (parent: string, key: string): string => path.join(parent, `${key}.${OWNER}`);

const NAME = /^([^.]+)\.(.+)\.([0-9a-f]{8})\.(\d+)\.(\d+)$/;

/** Whether the directory named `name` (made by ownDir) belongs to a process that is gone. */
export function ownerDead(name: string): boolean {
  const m = NAME.exec(name);
  if (!m || m[2] !== HOST) return false;
  if (m[3] !== BOOT) return true;
  return startTime(Number(m[4])) !== m[5];
}

/** Removes the directories under `parent` whose owner died on this host; returns their names. */
export async function reapJobDirs(parent: string): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const dead = names.filter(ownerDead);
  for (const n of dead) await removeTree(path.join(parent, n));
  return dead;
}
