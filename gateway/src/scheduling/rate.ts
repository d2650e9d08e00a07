// Event rate over a sliding window of one-second buckets, driven by the injected clock.
// It measures arrivals, dispatches and completions per model for /admin/state and for
// the queue-wait estimate behind early rejection and Retry-After.
import type { Clock } from '../../../shared/src/clock.ts';

export class RateMeter {
  readonly #clock: Clock;
  readonly #windowSeconds: number;
  readonly #counts: number[];
  #currentSecond: number;
  #startedAt: number;

  constructor(clock: Clock, windowSeconds = 10) {
    this.#clock = clock;
    this.#windowSeconds = windowSeconds;
    this.#counts = new Array<number>(windowSeconds).fill(0);
    this.#startedAt = clock.now();
    this.#currentSecond = Math.floor(this.#startedAt / 1000);
  }

  record(count = 1): void {
    this.#advance();
    const slot = this.#currentSecond % this.#windowSeconds;
    this.#counts[slot] = (this.#counts[slot] ?? 0) + count;
  }

  /** Events per second over the window, or over the time since creation when that is shorter. */
  perSecond(): number {
    this.#advance();
    const total = this.#counts.reduce((sum, n) => sum + n, 0);
    const elapsedSeconds = Math.min(this.#windowSeconds, Math.max(1, (this.#clock.now() - this.#startedAt) / 1000));
    return total / elapsedSeconds;
  }

  #advance(): void {
    const second = Math.floor(this.#clock.now() / 1000);
    const steps = Math.min(second - this.#currentSecond, this.#windowSeconds);
    for (let i = 1; i <= steps; i++) this.#counts[(this.#currentSecond + i) % this.#windowSeconds] = 0;
    if (second > this.#currentSecond) this.#currentSecond = second;
  }
}
