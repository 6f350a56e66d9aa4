/**
 * What the boot stage reads the console with, per job kind. KUnit and our kselftest init print
 * KTAP themselves; boot-time selftests print their own summaries, which BootSelftestConsole
 * turns into KTAP. Either way the crash line (panic, oops) comes from KtapExtractor, the one
 * place that knows what a dying kernel prints.
 */
import { BootSelftestConsole, KtapExtractor, type BootSelftest } from '@nommu-ci/shared';

export interface ConsoleReader {
  /** KTAP lines this console line yields. */
  push(line: string): string[];
  /** KTAP lines for what never reported, once the console is closed. */
  end(): string[];
  /** The first crash line, else null. */
  readonly crash: string | null;
  /** Whether any KTAP was produced (else the boot failed). */
  readonly found: boolean;
}

/** KTAP printed by the kernel or by init (KUnit, kselftest jobs). */
export function kunitReader(): ConsoleReader {
  const x = new KtapExtractor();
  return {
    push: (l) => x.push(l),
    end: () => [],
    get crash() {
      return x.crash;
    },
    get found() {
      return x.found;
    },
  };
}

/**
 * Boot-time selftests (kernel started with initcall_debug). The extractor sees the same lines for
 * its crash detection only: what it would release is KUnit's empty run (the job filters every
 * suite out), not ours.
 */
export function bootSelftestReader(selected: readonly BootSelftest[]): ConsoleReader {
  const tests = new BootSelftestConsole(selected);
  const x = new KtapExtractor();
  let started = false;
  const header = (): string[] => {
    if (started) return [];
    started = true;
    return tests.start();
  };
  return {
    push(l) {
      x.push(l);
      const out = tests.push(l);
      return out.length > 0 ? [...header(), ...out] : out;
    },
    end() {
      const out = tests.end();
      return out.length > 0 ? [...header(), ...out] : out;
    },
    get crash() {
      return x.crash;
    },
    get found() {
      return started;
    },
  };
}
