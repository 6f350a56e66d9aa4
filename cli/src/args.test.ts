import { describe, expect, it } from 'vitest';
import { commandArgs } from './args.js';

describe('commandArgs', () => {
  const options = { server: { type: 'string' }, follow: { type: 'boolean', short: 'f' } } as const;

  it('returns the values and positionals', () => {
    const errs: string[] = [];
    const a = commandArgs(['list', '-f', '--server', 'http://x'], options, { command: 'run', text: 'usage: run', err: (s) => errs.push(s) });
    expect(a?.values).toEqual({ follow: true, server: 'http://x' });
    expect(a?.positionals).toEqual(['list']);
    expect(errs).toEqual([]);
  });

  it('names the command and the bad option, then prints the usage, and returns null', () => {
    const errs: string[] = [];
    expect(commandArgs(['--bogus'], options, { command: 'run', text: 'usage: run', err: (s) => errs.push(s) })).toBeNull();
    expect(errs.join('')).toMatch(/^nommu-ci run: Unknown option '--bogus'.*\nusage: run\n$/s);
  });

  it('a string option without its value is an error too', () => {
    const errs: string[] = [];
    expect(commandArgs(['--server'], options, { command: 'token', text: 'usage: token', err: (s) => errs.push(s) })).toBeNull();
    expect(errs.join('')).toMatch(/^nommu-ci token: Option '--server <value>' argument missing/);
  });
});
