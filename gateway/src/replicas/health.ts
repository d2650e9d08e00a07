// Health state machine of one replica, free of I/O so it can be stepped with a manual
// clock. Active probes move it between probing, healthy and unhealthy. Results of real
// requests can eject it for a doubling period, and after that period one trial request
// decides whether it returns. A passing probe never ends an ejection early.
import type { Clock } from '../../../shared/src/clock.ts';

export interface HealthSettings {
  unhealthyThreshold: number;
  healthyThreshold: number;
  /** 0 turns passive ejection off. */
  consecutiveFailures: number;
  baseMs: number;
  maxMs: number;
}

export type ProbeState = 'probing' | 'healthy' | 'unhealthy';
/** Result of one upstream call as seen by passive health checking. */
export type CallVerdict = 'success' | 'failure' | 'neutral';

export class ReplicaHealth {
  readonly #clock: Clock;
  readonly #settings: HealthSettings;
  #probe: ProbeState = 'probing';
  #probeSuccesses = 0;
  #probeFailures = 0;
  #consecutiveFailures = 0;
  /** Clock time at which the current ejection period ends; undefined when not ejected. */
  #ejectedUntil: number | undefined;
  #ejections = 0;
  #lastRecoveredAt = Number.NEGATIVE_INFINITY;
  #trialInFlight = false;
  #cooldownUntil = 0;

  constructor(clock: Clock, settings: HealthSettings) {
    this.#clock = clock;
    this.#settings = settings;
  }

  get probeState(): ProbeState {
    return this.#probe;
  }

  get ejected(): boolean {
    return this.#ejectedUntil !== undefined;
  }

  /** Clock time at which the ejection period ends, for scheduling the trial. */
  get ejectedUntil(): number | undefined {
    return this.#ejectedUntil;
  }

  get cooldownUntil(): number {
    return this.#cooldownUntil;
  }

  /** Records an active probe; returns true when the probe state changed. */
  recordProbe(passed: boolean): boolean {
    const before = this.#probe;
    if (passed) {
      this.#probeSuccesses++;
      this.#probeFailures = 0;
      if (this.#probe !== 'healthy' && this.#probeSuccesses >= this.#settings.healthyThreshold) this.#probe = 'healthy';
    } else {
      this.#probeFailures++;
      this.#probeSuccesses = 0;
      if (this.#probe === 'healthy' && this.#probeFailures >= this.#settings.unhealthyThreshold) this.#probe = 'unhealthy';
    }
    return before !== this.#probe;
  }

  /**
   * Returns whether a new call may start now, apart from the in-flight limit: not cooling down,
   * probed healthy, and either not ejected or past the ejection period with no trial running.
   */
  admits(): boolean {
    const now = this.#clock.now();
    if (this.#probe !== 'healthy' || now < this.#cooldownUntil) return false;
    if (this.#ejectedUntil === undefined) return true;
    return now >= this.#ejectedUntil && !this.#trialInFlight;
  }

  /** Whether the next call is the single trial of an ejected replica. */
  get inTrialWindow(): boolean {
    return this.#ejectedUntil !== undefined && this.#clock.now() >= this.#ejectedUntil;
  }

  /** Marks the start of a call; returns true when it is the trial request. */
  startCall(): boolean {
    if (this.inTrialWindow && !this.#trialInFlight) {
      this.#trialInFlight = true;
      return true;
    }
    return false;
  }

  /**
   * Records the end of a call. Returns 'ejected' when this result ejected the replica,
   * 'recovered' when a trial brought it back, otherwise undefined.
   */
  finishCall(verdict: CallVerdict, wasTrial: boolean): 'ejected' | 'recovered' | undefined {
    if (wasTrial) {
      this.#trialInFlight = false;
      if (verdict === 'failure') return this.#eject();
      if (verdict === 'success') {
        this.#ejectedUntil = undefined;
        this.#consecutiveFailures = 0;
        this.#lastRecoveredAt = this.#clock.now();
        return 'recovered';
      }
      return undefined;
    }
    if (verdict === 'success') {
      this.#consecutiveFailures = 0;
      return undefined;
    }
    if (verdict === 'neutral' || this.#ejectedUntil !== undefined) return undefined;
    this.#consecutiveFailures++;
    const threshold = this.#settings.consecutiveFailures;
    if (threshold > 0 && this.#consecutiveFailures >= threshold) return this.#eject();
    return undefined;
  }

  /** Stops new calls for ms; overlapping cooldowns keep the one that ends last. */
  coolDown(ms: number): void {
    this.#cooldownUntil = Math.max(this.#cooldownUntil, this.#clock.now() + ms);
  }

  #eject(): 'ejected' {
    const now = this.#clock.now();
    // A replica that stayed healthy for a full maximum period starts again from the base period.
    if (now - this.#lastRecoveredAt > this.#settings.maxMs && this.#ejectedUntil === undefined) this.#ejections = 0;
    const period = Math.min(this.#settings.baseMs * 2 ** this.#ejections, this.#settings.maxMs);
    this.#ejections++;
    this.#ejectedUntil = now + period;
    this.#consecutiveFailures = 0;
    return 'ejected';
  }
}
