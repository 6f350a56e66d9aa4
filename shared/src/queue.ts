/**
 * The BullMQ queue both sides agree on (NOMMU_CI_QUEUE, read here so that the API and the workers
 * cannot disagree). Job data is only the id: the request lives in the store.
 */
export const QUEUE_NAME = process.env.NOMMU_CI_QUEUE || 'nommu-ci-jobs';

export interface QueueJobData {
  id: string;
}

export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6390';
}
