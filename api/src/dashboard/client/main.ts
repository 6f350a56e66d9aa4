/** The dashboard's script: live parts only; every page reads fine without it. */
import { every, refresh, setupCopy, tickClocks } from './dom.js';
import { liveJob } from './job.js';

setupCopy();
tickClocks();
switch (document.body.dataset.page) {
  case 'job':
    liveJob();
    break;
  case 'jobs':
    // The list as the server renders it, every few seconds: new jobs appear, states move.
    every(3000, async () => {
      // Not under a keyboard user's focus: replacing the rows would take it away.
      if (!document.getElementById('job-rows')?.contains(document.activeElement)) await refresh(['job-rows']);
      return true;
    });
    break;
  case 'run':
  case 'queue':
    every(5000, async () => {
      const doc = await refresh(['main']);
      return doc?.body.dataset.page === 'run' || doc?.body.dataset.page === 'queue';
    });
    break;
}
