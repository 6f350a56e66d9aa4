import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: O }>>;

/**
 * A subcommand's arguments; a usage error is written as `nommu-ci <command>: <what is wrong>`
 * followed by the usage text, and comes back as null (the caller exits with its usage code).
 */
export function commandArgs<O extends Options>(argv: string[], options: O, usage: { command: string; text: string; err: (s: string) => void }): Parsed<O> | null {
  try {
    return parseArgs({ args: argv, allowPositionals: true as const, options });
  } catch (e) {
    usage.err(`nommu-ci ${usage.command}: ${(e as Error).message}\n${usage.text}\n`);
    return null;
  }
}
