// The simulated GPU. Text generation runs in a sequence scheduler with running slots and a
// bounded waiting queue, like vLLM's max_num_seqs. Embeddings and V2 rows run in a batch
// executor: executions of at most maxBatch items, serialized per GPU stream, like
// Triton's dynamic batcher. All time comes from the injected Clock.
import type { Clock, TimerHandle } from '../../shared/src/clock.ts';
import type { ReplicaConfig } from './config.ts';

export type EngineConfig = Pick<
  ReplicaConfig,
  | 'maxConcurrency'
  | 'maxWaiting'
  | 'maxBatch'
  | 'gpuStreams'
  | 'prefillBaseMs'
  | 'prefillPerTokenMs'
  | 'itlBaseMs'
  | 'itlPerRunningMs'
  | 'execBaseMs'
  | 'execPerItemMs'
>;

/** Thrown by submit calls when the waiting queue already contains maxWaiting requests. */
export class QueueFullError extends Error {
  readonly code = 'queue_full';
}

export interface SequenceSpec {
  model: string;
  promptTokens: number;
  outputTokens: number;
}

export interface SequenceCallbacks {
  /** The sequence got a running slot after waiting queueMs. */
  onStart?(queueMs: number): void;
  /** Token `index` (0-based) is ready; index 0 arrives after the prefill. */
  onToken(index: number): void;
  /** All tokens were produced; the slot is already free. */
  onFinish(): void;
}

export interface BatchSpec {
  model: string;
  items: number;
  /** Embedding inputs may be split across executions; a V2 request's rows may not. */
  splittable: boolean;
}

export interface BatchCallbacks {
  onStart?(queueMs: number): void;
  /** Every item was executed; `executeMs` sums the executions the request took part in. */
  onFinish(executeMs: number): void;
}

/** Cancels a submitted request: it leaves the queue, or frees its slot at once. */
export interface WorkHandle {
  cancel(): void;
}

export interface EngineEvents {
  onExecution?(model: string, items: number, durationMs: number): void;
}

interface SequenceState {
  spec: SequenceSpec;
  callbacks: SequenceCallbacks;
  submittedAt: number;
  emitted: number;
  timer: TimerHandle | undefined;
  running: boolean;
  done: boolean;
}

interface BatchState {
  spec: BatchSpec;
  callbacks: BatchCallbacks;
  submittedAt: number;
  unstarted: number;
  finished: number;
  executeMs: number;
  started: boolean;
  cancelled: boolean;
}

export class Engine {
  readonly #config: Readonly<EngineConfig>;
  readonly #clock: Clock;
  readonly #events: EngineEvents;
  readonly #waitingSequences: SequenceState[] = [];
  readonly #runningSequences = new Set<SequenceState>();
  readonly #batchQueue: BatchState[] = [];
  readonly #batchRunning = new Set<BatchState>();
  readonly #executionTimers = new Set<TimerHandle>();
  #activeStreams = 0;

  constructor(config: Readonly<EngineConfig>, clock: Clock, events: EngineEvents = {}) {
    this.#config = config;
    this.#clock = clock;
    this.#events = events;
  }

  get running(): number {
    return this.#runningSequences.size + this.#batchRunning.size;
  }

  get waiting(): number {
    return this.#waitingSequences.length + this.#batchQueue.filter((state) => !state.started).length;
  }

  /** Requests running and waiting for one model, for the per-model gauges. */
  load(model: string): { running: number; waiting: number; cachedTokens: number } {
    let running = 0;
    let cachedTokens = 0;
    for (const state of this.#runningSequences) {
      if (state.spec.model !== model) continue;
      running++;
      cachedTokens += state.spec.promptTokens + state.emitted;
    }
    for (const state of this.#batchRunning) if (state.spec.model === model) running++;
    let waiting = this.#waitingSequences.filter((state) => state.spec.model === model).length;
    waiting += this.#batchQueue.filter((state) => !state.started && state.spec.model === model).length;
    return { running, waiting, cachedTokens };
  }

  /** Admits a generation sequence or throws QueueFullError. Callbacks run from clock timers. */
  submitSequence(spec: SequenceSpec, callbacks: SequenceCallbacks): WorkHandle {
    const state: SequenceState = {
      spec,
      callbacks,
      submittedAt: this.#clock.now(),
      emitted: 0,
      timer: undefined,
      running: false,
      done: false,
    };
    if (this.#runningSequences.size < this.#config.maxConcurrency && this.#waitingSequences.length === 0) {
      this.#startSequence(state);
    } else {
      this.#admitWaiting();
      this.#waitingSequences.push(state);
    }
    return { cancel: () => this.#cancelSequence(state) };
  }

  /** Admits a batched request or throws QueueFullError. */
  submitBatch(spec: BatchSpec, callbacks: BatchCallbacks): WorkHandle {
    const canStartNow = this.#activeStreams < this.#config.gpuStreams && this.#batchQueue.length === 0;
    if (!canStartNow) this.#admitWaiting();
    const state: BatchState = {
      spec,
      callbacks,
      submittedAt: this.#clock.now(),
      unstarted: spec.items,
      finished: 0,
      executeMs: 0,
      started: false,
      cancelled: false,
    };
    this.#batchQueue.push(state);
    this.#pumpExecutions();
    return { cancel: () => this.#cancelBatch(state) };
  }

  /** Cancels every timer; used when the server stops abruptly. */
  stop(): void {
    for (const state of this.#runningSequences) state.timer?.cancel();
    for (const timer of this.#executionTimers) timer.cancel();
    this.#executionTimers.clear();
  }

  #admitWaiting(): void {
    const waiting = this.waiting;
    if (waiting >= this.#config.maxWaiting) {
      throw new QueueFullError(`waiting queue is full (${waiting} of ${this.#config.maxWaiting} requests)`);
    }
  }

  #startSequence(state: SequenceState): void {
    state.running = true;
    this.#runningSequences.add(state);
    state.callbacks.onStart?.(this.#clock.now() - state.submittedAt);
    const prefillMs = this.#config.prefillBaseMs + this.#config.prefillPerTokenMs * state.spec.promptTokens;
    state.timer = this.#clock.setTimer(prefillMs, () => this.#emitToken(state));
  }

  #emitToken(state: SequenceState): void {
    state.timer = undefined;
    for (;;) {
      if (state.done) return;
      if (state.emitted < state.spec.outputTokens) {
        state.callbacks.onToken(state.emitted);
        state.emitted++;
      }
      // onToken may have cancelled the sequence (a reset stream).
      if (state.done) return;
      if (state.emitted >= state.spec.outputTokens) {
        this.#finishSequence(state);
        state.callbacks.onFinish();
        return;
      }
      // Decode steps slow down as more sequences share the GPU.
      const itlMs = this.#config.itlBaseMs + this.#config.itlPerRunningMs * this.#runningSequences.size;
      // A zero latency emits the next token now, because a 0 ms timer still waits about 1 ms in Node.
      if (itlMs > 0) {
        state.timer = this.#clock.setTimer(itlMs, () => this.#emitToken(state));
        return;
      }
    }
  }

  #finishSequence(state: SequenceState): void {
    state.done = true;
    state.timer?.cancel();
    state.timer = undefined;
    if (state.running) {
      this.#runningSequences.delete(state);
      this.#promoteSequences();
    } else {
      const index = this.#waitingSequences.indexOf(state);
      if (index >= 0) this.#waitingSequences.splice(index, 1);
    }
  }

  #cancelSequence(state: SequenceState): void {
    if (state.done) return;
    this.#finishSequence(state);
  }

  #promoteSequences(): void {
    while (this.#runningSequences.size < this.#config.maxConcurrency) {
      const next = this.#waitingSequences.shift();
      if (next === undefined) return;
      this.#startSequence(next);
    }
  }

  #cancelBatch(state: BatchState): void {
    if (state.cancelled || state.finished === state.spec.items) return;
    state.cancelled = true;
    this.#batchRunning.delete(state);
    const index = this.#batchQueue.indexOf(state);
    if (index >= 0) this.#batchQueue.splice(index, 1);
  }

  /** Starts executions while a GPU stream is free and items wait. */
  #pumpExecutions(): void {
    while (this.#activeStreams < this.#config.gpuStreams && this.#batchQueue.length > 0) {
      const parts = this.#takeExecution();
      if (parts.length === 0) return;
      this.#runExecution(parts);
    }
  }

  /**
   * Takes up to maxBatch items in arrival order from requests for the head request's model.
   * A request whose rows may not be split and do not fit ends the scan, so no request
   * overtakes an older one of the same model.
   */
  #takeExecution(): Array<{ state: BatchState; items: number }> {
    const head = this.#batchQueue[0];
    if (head === undefined) return [];
    const model = head.spec.model;
    const parts: Array<{ state: BatchState; items: number }> = [];
    let capacity = this.#config.maxBatch;
    for (const state of this.#batchQueue) {
      if (capacity === 0) break;
      if (state.spec.model !== model) continue;
      let take: number;
      if (state.spec.splittable) take = Math.min(state.unstarted, capacity);
      else if (state.unstarted <= capacity || capacity === this.#config.maxBatch) take = state.unstarted;
      else break;
      parts.push({ state, items: take });
      capacity -= take;
    }
    const now = this.#clock.now();
    for (const part of parts) {
      part.state.unstarted -= part.items;
      if (!part.state.started) {
        part.state.started = true;
        this.#batchRunning.add(part.state);
        part.state.callbacks.onStart?.(now - part.state.submittedAt);
      }
    }
    for (let i = this.#batchQueue.length - 1; i >= 0; i--) {
      if (this.#batchQueue[i]?.unstarted === 0) this.#batchQueue.splice(i, 1);
    }
    return parts;
  }

  #runExecution(parts: Array<{ state: BatchState; items: number }>): void {
    const items = parts.reduce((sum, part) => sum + part.items, 0);
    const durationMs = this.#config.execBaseMs + this.#config.execPerItemMs * items;
    const model = parts[0]?.state.spec.model ?? '';
    this.#activeStreams++;
    this.#events.onExecution?.(model, items, durationMs);
    const timer = this.#clock.setTimer(durationMs, () => {
      this.#executionTimers.delete(timer);
      this.#activeStreams--;
      for (const part of parts) {
        const state = part.state;
        state.finished += part.items;
        state.executeMs += durationMs;
        if (state.cancelled || state.finished < state.spec.items) continue;
        this.#batchRunning.delete(state);
        state.callbacks.onFinish(state.executeMs);
      }
      this.#pumpExecutions();
    });
    this.#executionTimers.add(timer);
  }
}
