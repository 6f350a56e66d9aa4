/**
 * `nommu-ci token create|list|revoke`: token management through the admin endpoints, with an
 * admin token (--token or NOMMU_CI_TOKEN; the first one is the server's NOMMU_CI_ADMIN_TOKEN).
 * `create` prints the new token alone on standard output, so `T=$(nommu-ci token create ...)` works.
 */
import { ApiError, Client } from './client.js';
import { commandArgs } from './args.js';

export const TOKEN_USAGE = `usage:
  nommu-ci token create --name NAME --role read|submit|admin [--max-concurrent N] [--max-per-hour N]
  nommu-ci token list
  nommu-ci token revoke NAME
options: --server URL (default $NOMMU_CI_URL or http://127.0.0.1:8080), --token ADMIN_TOKEN (default $NOMMU_CI_TOKEN)`;

interface TokenInfo {
  name: string;
  role: string;
  created_at: string;
  max_concurrent: number | null;
  max_per_hour: number | null;
}

export async function tokenCommand(argv: string[], io = { out: (s: string) => process.stdout.write(s), err: (s: string) => process.stderr.write(s) }): Promise<number> {
  const args = commandArgs(
    argv,
    {
      server: { type: 'string' },
      token: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      'max-concurrent': { type: 'string' },
      'max-per-hour': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    { command: 'token', text: TOKEN_USAGE, err: io.err },
  );
  if (!args) return 64;
  const { values, positionals } = args;
  if (values.help) {
    io.err(TOKEN_USAGE + '\n');
    return 0;
  }
  const client = new Client((values.server ?? process.env.NOMMU_CI_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, ''), values.token ?? (process.env.NOMMU_CI_TOKEN || undefined));
  const limit = (v: string | undefined, flag: string) => {
    if (v === undefined) return {};
    if (!/^[0-9]+$/.test(v)) throw new ApiError(400, `--${flag}: not a number: "${v}"`);
    return { [flag.replace(/-/g, '_')]: Number(v) };
  };
  const [cmd, arg] = positionals;
  switch (cmd) {
    case 'create': {
      if (!values.name || !values.role) {
        io.err(`nommu-ci token create: needs --name and --role\n${TOKEN_USAGE}\n`);
        return 64;
      }
      const made = await client.call<TokenInfo & { token: string }>('POST', '/v1/admin/tokens', {
        name: values.name,
        role: values.role,
        ...limit(values['max-concurrent'], 'max-concurrent'),
        ...limit(values['max-per-hour'], 'max-per-hour'),
      });
      io.out(made.token + '\n');
      io.err(`nommu-ci: token "${made.name}" (role ${made.role}) created; it is shown only this once\n`);
      return 0;
    }
    case 'list': {
      const tokens = await client.call<TokenInfo[]>('GET', '/v1/admin/tokens');
      const rows = [['NAME', 'ROLE', 'CREATED', 'MAX-CONCURRENT', 'MAX-PER-HOUR'], ...tokens.map((t) => [t.name, t.role, t.created_at, String(t.max_concurrent ?? 'default'), String(t.max_per_hour ?? 'default')])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) io.out(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
      return 0;
    }
    case 'revoke': {
      if (!arg) {
        io.err(`nommu-ci token revoke: needs the token's name\n${TOKEN_USAGE}\n`);
        return 64;
      }
      await client.call('DELETE', `/v1/admin/tokens/${encodeURIComponent(arg)}`);
      io.err(`nommu-ci: token "${arg}" revoked\n`);
      return 0;
    }
    default:
      io.err(`nommu-ci token: unknown command "${cmd ?? ''}"\n${TOKEN_USAGE}\n`);
      return 64;
  }
}
