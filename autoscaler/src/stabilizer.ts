// Turns a model's raw demand, sampled once per poll, into the value served to the HPA.
// The value rises at once and falls only to the maximum seen over the scale-down window,
// so a burst scales up in one step and a short lull scales nothing down. After
// idleToZeroSeconds of zero demand on fresh data the model is idle and the value is 0.
import type { Clock } from '../../shared/src/clock.ts';

export interface StabilizerSettings {
  scaleDownWindowSeconds: number;
  idleToZeroSeconds: number;
}

export interface StabilizedDemand {
  /** Value to serve; undefined while the data is stale, so the API returns 503 and never 0. */
  value: number | undefined;
  /** Maximum raw demand over the scale-down window, or undefined when no sample is in it. */
  windowMax: number | undefined;
  /** Milliseconds of continuous zero demand on fresh data; 0 while there is demand or data is stale. */
  idleForMs: number;
  /** True once zero demand has lasted idleToZeroSeconds on fresh data. */
  idle: boolean;
  stale: boolean;
}

interface Sample {
  at: number;
  demand: number;
}

export class Stabilizer {
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #idleMs: number;
  /**
   * Samples that can still be the window maximum, oldest first, with strictly decreasing
   * demand: a sample followed by a larger or equal one can never be the maximum again,
   * so it is dropped on arrival of that one. The front is the window maximum.
   */
  #candidates: Sample[] = [];
  #idleSince: number | undefined;

  constructor(clock: Clock, settings: StabilizerSettings) {
    this.#clock = clock;
    this.#windowMs = settings.scaleDownWindowSeconds * 1000;
    this.#idleMs = settings.idleToZeroSeconds * 1000;
  }

  /**
   * Records one poll's raw demand (undefined when the data is stale) and returns the
   * stabilized result. Stale data adds no sample and restarts the idle timer, so only an
   * unbroken run of fresh zero samples makes a model idle.
   */
  update(demand: number | undefined): StabilizedDemand {
    const now = this.#clock.now();
    this.#expire(now);

    if (demand === undefined) {
      this.#idleSince = undefined;
      return { value: undefined, windowMax: this.#windowMax(), idleForMs: 0, idle: false, stale: true };
    }
    if (!Number.isFinite(demand) || demand < 0) {
      throw new RangeError(`invalid demand ${demand}: expected a finite number >= 0`);
    }

    this.#push({ at: now, demand });
    if (demand > 0) this.#idleSince = undefined;
    else this.#idleSince ??= now;

    const idleForMs = this.#idleSince === undefined ? 0 : now - this.#idleSince;
    const idle = this.#idleSince !== undefined && idleForMs >= this.#idleMs;
    if (idle) {
      // The burst that preceded the idle period must not come back as the window maximum
      // when the next request arrives, so the window restarts from this zero sample.
      this.#candidates = [{ at: now, demand: 0 }];
      return { value: 0, windowMax: 0, idleForMs, idle, stale: false };
    }
    const windowMax = this.#windowMax() ?? demand;
    return { value: windowMax, windowMax, idleForMs, idle, stale: false };
  }

  #push(sample: Sample): void {
    while (this.#candidates.length > 0 && this.#candidates[this.#candidates.length - 1]!.demand <= sample.demand) {
      this.#candidates.pop();
    }
    this.#candidates.push(sample);
  }

  #expire(now: number): void {
    // A sample taken exactly windowMs ago still counts: the window is closed at both ends.
    while (this.#candidates.length > 0 && this.#candidates[0]!.at < now - this.#windowMs) {
      this.#candidates.shift();
    }
  }

  #windowMax(): number | undefined {
    return this.#candidates[0]?.demand;
  }
}
