// Counters served at GET /sim/stats so tests and benchmarks can assert on what the
// replica saw. Every received inference request ends in exactly one of completed,
// aborted, rejected, invalid or failed, or is still running, waiting or hung.

/** Length of the executionItems and requestIds rings. */
export const STATS_RING_SIZE = 10_000;

export interface SimStats {
  /** Inference requests received (health, metrics, model listing and /sim calls excluded). */
  received: number;
  /** Inference requests that got a 2xx status and a complete body. */
  completed: number;
  /** Inference requests whose client disconnected before the response completed. */
  aborted: number;
  /** Inference requests refused for capacity or state: 429 queue full, 503 starting or closing. */
  rejected: number;
  /** Inference requests that got 400, 404, 413 or 415 because of the request itself. */
  invalid: number;
  /** Inference requests hit by an injected error or connection reset. */
  failed: number;
  /** Requests holding a sequence slot or with items executing now. */
  running: number;
  /** Requests waiting for a sequence slot or for an execution. */
  waiting: number;
  /** Batched executions started (embeddings and V2). */
  executions: number;
  /** Items in each execution, oldest first, at most the most recent 10000. */
  executionItems: number[];
  /** x-request-id of the most recent 10000 inference requests in arrival order; "" when absent. */
  requestIds: string[];
  /** Requests by "<METHOD> <route pattern>", every route except /sim/*. */
  byRoute: Record<string, number>;
}

export type RequestOutcome = 'completed' | 'aborted' | 'rejected' | 'invalid' | 'failed';

/** Mutable counters behind /sim/stats; running and waiting come from the schedulers. */
export class StatsRecorder {
  #received = 0;
  #outcomes: Record<RequestOutcome, number> = { completed: 0, aborted: 0, rejected: 0, invalid: 0, failed: 0 };
  #executions = 0;
  #executionItems: number[] = [];
  #requestIds: string[] = [];
  #byRoute = new Map<string, number>();

  recordRoute(method: string, route: string): void {
    const key = `${method} ${route}`;
    this.#byRoute.set(key, (this.#byRoute.get(key) ?? 0) + 1);
  }

  recordReceived(requestId: string): void {
    this.#received++;
    pushBounded(this.#requestIds, requestId);
  }

  recordOutcome(outcome: RequestOutcome): void {
    this.#outcomes[outcome]++;
  }

  recordExecution(items: number): void {
    this.#executions++;
    pushBounded(this.#executionItems, items);
  }

  snapshot(running: number, waiting: number): SimStats {
    return {
      received: this.#received,
      ...this.#outcomes,
      running,
      waiting,
      executions: this.#executions,
      executionItems: this.#executionItems.slice(-STATS_RING_SIZE),
      requestIds: this.#requestIds.slice(-STATS_RING_SIZE),
      byRoute: Object.fromEntries(this.#byRoute),
    };
  }

  /** Zeroes every counter; running and waiting keep reflecting work in progress. */
  reset(): void {
    this.#received = 0;
    this.#outcomes = { completed: 0, aborted: 0, rejected: 0, invalid: 0, failed: 0 };
    this.#executions = 0;
    this.#executionItems = [];
    this.#requestIds = [];
    this.#byRoute.clear();
  }
}

/** Appends a value, trimming to the newest STATS_RING_SIZE only once twice that many collect, so a push costs O(1) on average. */
function pushBounded<T>(ring: T[], value: T): void {
  ring.push(value);
  if (ring.length >= 2 * STATS_RING_SIZE) ring.splice(0, ring.length - STATS_RING_SIZE);
}
