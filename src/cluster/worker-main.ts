// Entry point of a data-plane worker process (forked by the primary's WorkerPool).
import { runWorker } from './worker.ts';

runWorker();
