// The per-model admission queue: strict priority between classes, FIFO within a class,
// O(1) removal of any entry (client left, deadline passed), eviction of the newest
// sheddable entry when full, and a front lane for retried requests.
//
// Hand-written rather than p-queue because p-queue runs tasks as soon as its concurrency
// allows. Here an entry must stay in the queue until a replica slot frees (late binding), a
// batch takes several compatible entries at once, and entries leave from the middle on
// deadline or disconnect. None of that fits p-queue's task model.
import { PRIORITIES, type Priority } from '../../../shared/src/admin-state.ts';

export interface QueueItem {
  readonly priority: Priority;
  /** Clock time in ms at which the request arrived at the gateway. */
  readonly arrivedAt: number;
}

export type AdmitResult<T> = { admitted: true; evicted?: T } | { admitted: false };

interface Lane<T> {
  /** Retried entries go ahead of fresh ones of the same class. Sets iterate in insertion order. */
  retries: Set<T>;
  fresh: Set<T>;
}

export class AdmissionQueue<T extends QueueItem> {
  readonly maxSize: number;
  #lanes: Record<Priority, Lane<T>>;
  /**
   * The six sets of entries in dispatch order. Dispatch loops over them for every request,
   * because the generator of entries() allocates its state and a result object per entry.
   */
  readonly ordered: readonly ReadonlySet<T>[];
  #size = 0;

  constructor(maxSize: number) {
    if (!Number.isInteger(maxSize) || maxSize < 1) throw new RangeError(`queue maxSize must be an integer >= 1, got ${maxSize}`);
    this.maxSize = maxSize;
    this.#lanes = {
      critical: { retries: new Set(), fresh: new Set() },
      standard: { retries: new Set(), fresh: new Set() },
      sheddable: { retries: new Set(), fresh: new Set() },
    };
    this.ordered = PRIORITIES.flatMap((priority) => [this.#lanes[priority].retries, this.#lanes[priority].fresh]);
  }

  get size(): number {
    return this.#size;
  }

  sizeOf(priority: Priority): number {
    const lane = this.#lanes[priority];
    return lane.retries.size + lane.fresh.size;
  }

  /**
   * Adds a new entry at the back of its class. When the queue is full, a critical or
   * standard entry evicts the newest sheddable entry, which the caller must reject with
   * 429. Otherwise the newcomer is not admitted.
   */
  admit(item: T): AdmitResult<T> {
    if (this.#size < this.maxSize) {
      this.#lanes[item.priority].fresh.add(item);
      this.#size++;
      return { admitted: true };
    }
    if (item.priority === 'sheddable') return { admitted: false };
    const victim = this.newest('sheddable');
    if (victim === undefined) return { admitted: false };
    this.remove(victim);
    this.#lanes[item.priority].fresh.add(item);
    this.#size++;
    return { admitted: true, evicted: victim };
  }

  /** Puts a retried entry ahead of the fresh entries of its class; retries may exceed maxSize briefly. */
  requeue(item: T): void {
    this.#lanes[item.priority].retries.add(item);
    this.#size++;
  }

  /** Removes item wherever it is; returns false when it was not queued. */
  remove(item: T): boolean {
    const lane = this.#lanes[item.priority];
    if (lane.retries.delete(item) || lane.fresh.delete(item)) {
      this.#size--;
      return true;
    }
    return false;
  }

  has(item: T): boolean {
    const lane = this.#lanes[item.priority];
    return lane.retries.has(item) || lane.fresh.has(item);
  }

  /** Entries in dispatch order: critical, standard, sheddable; retries first within a class. */
  *entries(): Generator<T> {
    for (const priority of PRIORITIES) {
      yield* this.#lanes[priority].retries;
      yield* this.#lanes[priority].fresh;
    }
  }

  first(): T | undefined {
    for (const item of this.entries()) return item;
    return undefined;
  }

  /** Number of entries that dispatch before a new entry of this priority would. */
  countAhead(priority: Priority): number {
    let count = 0;
    for (const p of PRIORITIES) {
      count += this.sizeOf(p);
      if (p === priority) break;
    }
    return count;
  }

  /** Arrival time of the entry that has waited longest, or undefined when empty. */
  oldestArrival(): number | undefined {
    let oldest: number | undefined;
    for (const item of this.entries()) {
      if (oldest === undefined || item.arrivedAt < oldest) oldest = item.arrivedAt;
    }
    return oldest;
  }

  newest(priority: Priority): T | undefined {
    const lane = this.#lanes[priority];
    let last: T | undefined;
    for (const item of lane.fresh) last = item;
    if (last !== undefined) return last;
    for (const item of lane.retries) last = item;
    return last;
  }
}
