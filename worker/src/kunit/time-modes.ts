/**
 * Which KUnit suites run under UML's time-travel mode. In that mode (basic `time-travel`, with
 * CONFIG_UML_TIME_TRAVEL_SUPPORT) the kernel's clock jumps over idle time instead of waiting, so
 * a suite that sleeps (lib_ratelimit: 25 s in real time) ends in a few seconds; a suite whose
 * tests measure elapsed time may behave differently, so nothing is assumed. The decision is per suite, from a measurement of both modes on the same
 * kernel (kernel-images/kunit-time-modes.json, written by bench/kunit-time-modes.ts): a suite
 * runs time-travel only where that gave the same results and was faster. Suites not measured
 * run in real time.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KERNEL_IMAGES_DIR, type TimeMode } from '@nommu-ci/shared';

export const TIME_MODES_FILE = path.join(KERNEL_IMAGES_DIR, 'kunit-time-modes.json');

export interface SuiteMeasurement {
  /** Which kernel: `mmu` or `nommu`, and the config it was built with. */
  kernel: string;
  config: string;
  /** Wall time of the suite alone in a kernel, in each mode (ms). */
  real_ms: number | null;
  time_travel_ms: number | null;
  /** Same statuses, test by test, in both modes; false when one mode did not end. */
  same_results: boolean;
  measured_at: string;
}

export interface SuiteDecision {
  mode: TimeMode;
  why: string;
  measurements: SuiteMeasurement[];
}

export interface TimeModes {
  /** Kernel source version the measurements are of. */
  kernel: string;
  command: string;
  suites: Record<string, SuiteDecision>;
}

let cached: TimeModes | null = null;

export function loadTimeModes(file = TIME_MODES_FILE): TimeModes {
  if (file === TIME_MODES_FILE && cached) return cached;
  let data: TimeModes;
  try {
    data = JSON.parse(readFileSync(file, 'utf8')) as TimeModes;
  } catch {
    data = { kernel: '', command: '', suites: {} };
  }
  if (file === TIME_MODES_FILE) cached = data;
  return data;
}

export function timeModeOf(suite: string, modes: TimeModes = loadTimeModes()): TimeMode {
  return modes.suites[suite]?.mode ?? 'real';
}
