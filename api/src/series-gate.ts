/**
 * No-MMU work only on kernels whose no-MMU series applies: a kernel an operator adds (a tree of
 * their own in NOMMU_CI_KERNELS) may be one our series does not apply to. It still runs MMU
 * jobs; a no-MMU job or a run on it gets a 422 at POST time naming the first patch and hunk that
 * fail, instead of a job that fails at its `source` stage later. The check itself is cached
 * (SeriesApplicability), so a POST does not run git.
 */
import { describeApplyFailure, type KernelSource, type SeriesInfo } from '@nommu-ci/shared';
import type { FastifyInstance } from 'fastify';
import { HttpError } from './errors.js';

export async function assertSeriesApplies(app: FastifyInstance, kernel: KernelSource, series: SeriesInfo): Promise<void> {
  // Not on this host (only on the workers'): the worker's source stage says it if it fails there.
  if (!app.deps.seriesApplies || !kernel.available) return;
  const failure = await app.deps.seriesApplies(kernel, series);
  if (failure) throw new HttpError(422, describeApplyFailure(kernel, series, failure));
}
