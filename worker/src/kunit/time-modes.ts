/**
 * Which KUnit suites run under UML's time-travel mode. In that mode (`time-travel=inf-cpu`, with
 * CONFIG_UML_TIME_TRAVEL_SUPPORT) the kernel's clock jumps over idle time instead of waiting, so
 * a suite that sleeps (lib_ratelimit: about 25 s) ends in well under a second; a suite that needs
 * time to pass while it computes (printk-ringbuffer runs readers and a writer for 10 s of clock
 * time) never ends. The decision is per suite, from a measurement of both modes on the same
 * kernel (kernel-images/kunit-time-modes.json, written by bench/kunit-time-modes.ts): a suite
 * runs time-travel only where that gave the same results and was faster. Suites not measured
 * run in real time.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KERNEL_IMAGES_DIR, type TimeMode } from '@nommu-ci/shared';

export const TIME_MODES_FILE = path.join(KERNEL_IMAGES_DIR, 'kunit-time-modes.json');

export interface SuiteMeasurement {
  mode: TimeMode;
  /** Wall time of the suite in each mode (ms); null where it did not end. */
  real_ms: number | null;
  time_travel_ms: number | null;
  /** Same statuses, test by test, in both modes. */
  same_results: boolean;
  why: string;
}

export interface TimeModes {
  kernel: string;
  measured_at: string;
  command: string;
  suites: Record<string, SuiteMeasurement>;
}

let cached: TimeModes | null = null;

export function loadTimeModes(file = TIME_MODES_FILE): TimeModes {
  if (file === TIME_MODES_FILE && cached) return cached;
  let data: TimeModes;
  try {
    data = JSON.parse(readFileSync(file, 'utf8')) as TimeModes;
  } catch {
    data = { kernel: '', measured_at: '', command: '', suites: {} };
  }
  if (file === TIME_MODES_FILE) cached = data;
  return data;
}

export function timeModeOf(suite: string, modes: TimeModes = loadTimeModes()): TimeMode {
  return modes.suites[suite]?.mode ?? 'real';
}
