/**
 * A real Patchwork 3.1.3 server for tests: the vendored release source (patchwork/, GPL-2.0, its
 * COPYING beside it) on Debian's python3-django, python3-djangorestframework and
 * python3-django-filters (installed by infra/setup.sh), with a SQLite database in a temporary
 * directory, one project, and a user who maintains it and owns an API token (posting checks
 * needs maintainer rights). Series are loaded as a mailing list archive would be, with
 * `manage.py parsearchive`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_DIR } from '@nommu-ci/shared';

const run = promisify(execFile);
const TARBALL = path.join(REPO_DIR, 'infra/testdeps/patchwork/patchwork-3.1.3.tar.gz');
const PYTHON = '/usr/bin/python3';

export interface PatchworkProject {
  linkname: string;
  listId: string;
  listEmail: string;
}

export interface Patchwork {
  url: string;
  /** API token of the maintainer user "bot". */
  token: string;
  project: PatchworkProject;
  /** Loads an mbox as the mailing list archive (manage.py parsearchive). */
  parseArchive(mbox: string): Promise<void>;
  stop(): Promise<void>;
}

/** Whether this host can run it (Debian's Django and DRF installed). */
export async function patchworkAvailable(): Promise<boolean> {
  try {
    await run(PYTHON, ['-c', 'import django, rest_framework, django_filters']);
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startPatchwork(project: PatchworkProject = { linkname: 'linux-mm', listId: 'linux-mm.kvack.org', listEmail: 'linux-mm@kvack.org' }): Promise<Patchwork> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nci-patchwork-'));
  await run('tar', ['xzf', TARBALL, '-C', dir]);
  const src = path.join(dir, 'patchwork-3.1.3');
  const env = { ...process.env, DJANGO_SETTINGS_MODULE: 'patchwork.settings.dev', DATABASE_TYPE: 'sqlite3', DATABASE_NAME: path.join(dir, 'db.sqlite3'), PYTHONDONTWRITEBYTECODE: '1' };
  const manage = (...args: string[]) => run(PYTHON, ['manage.py', ...args], { cwd: src, env, maxBuffer: 16 << 20 });
  await manage('migrate', '-v0');
  await manage('loaddata', 'default_tags', 'default_states', '-v0');
  const setup = `
import django; django.setup()
from django.contrib.auth.models import User
from patchwork.models import Project
from rest_framework.authtoken.models import Token
u, _ = User.objects.get_or_create(username='bot', defaults={'email': 'bot@example.org'})
p, _ = Project.objects.get_or_create(linkname=${JSON.stringify(project.linkname)}, defaults={
    'name': ${JSON.stringify(project.linkname)}, 'listid': ${JSON.stringify(project.listId)}, 'listemail': ${JSON.stringify(project.listEmail)}})
u.profile.maintainer_projects.add(p)
print(Token.objects.get_or_create(user=u)[0].key)
`;
  const { stdout } = await run(PYTHON, ['-c', setup], { cwd: src, env });
  const token = stdout.trim().split('\n').pop()!;
  const port = await freePort();
  const server: ChildProcess = spawn(PYTHON, ['manage.py', 'runserver', `127.0.0.1:${port}`, '--noreload'], { cwd: src, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`patchwork exited (${server.exitCode}): ${log}`);
    try {
      if ((await fetch(`${url}/api/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`patchwork did not answer on ${url}: ${log}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    url,
    token,
    project,
    async parseArchive(mbox: string) {
      const file = path.join(dir, `archive-${Date.now()}.mbox`);
      writeFileSync(file, mbox);
      await manage('parsearchive', `--list-id=${project.listId}`, file);
    },
    async stop() {
      if (server.exitCode === null) {
        server.kill('SIGTERM');
        await new Promise((r) => server.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
