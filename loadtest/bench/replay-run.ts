// Open-loop replay of a request trace against an OpenAI-compatible endpoint. Each trace row
// becomes one chat request with the row's prompt and output lengths, sent at the row's
// arrival time divided by the speed factor. The result accounts for how each request ended.
import type { Dispatcher } from 'undici';
import type { Clock } from '../../shared/src/clock.ts';
import { createLoadAgent, timedRequest } from './http-client.ts';
import { chatRequest } from './payloads.ts';
import { runOpenLoop, type OpenLoopResult, type OverflowPolicy } from './scheduler.ts';
import { OutcomeTally, type TallySnapshot } from './tally.ts';
import type { ScheduledRow } from './trace.ts';

export interface ReplayOptions {
  baseUrl: string;
  model: string;
  rows: readonly ScheduledRow[];
  stream: boolean;
  /** Prompts longer than this many tokens are cut to it, to keep request bodies a sane size. */
  maxPromptTokens: number;
  maxInFlight: number;
  overflow: OverflowPolicy;
  /** Per-request limit for response headers and for the gap between body chunks, in milliseconds. */
  requestTimeoutMs: number;
  /**
   * Hard wall-clock cap for the whole run, in milliseconds: sending stops and requests still
   * outstanding are aborted and counted as lost.
   */
  maxWallMs: number;
  clock: Clock;
  /** Called about every progressIntervalMs while the run is going, for a progress bar. */
  onProgress?: (progress: ReplayProgress) => void;
  progressIntervalMs?: number;
  /**
   * Signal that stops sending and aborts the outstanding requests (Ctrl-C, SIGTERM). They
   * count as client aborts, because the user ended them, not the server.
   */
  interrupt?: AbortSignal;
  /** Prefix of the x-request-id of each request; the row index is appended. */
  requestIdPrefix?: string;
}

export interface ReplayProgress {
  planned: number;
  sent: number;
  inFlight: number;
  succeeded: number;
}

export interface ReplayResult {
  schedule: OpenLoopResult;
  tally: TallySnapshot;
  /** Requests whose prompt was cut to maxPromptTokens. */
  promptsCapped: number;
  wallMs: number;
  /** Whether the hard wall-clock cap ended the run. */
  hitWallCap: boolean;
  /** Whether options.interrupt ended the run. */
  interrupted: boolean;
}

/** Replays the rows and resolves when every sent request has ended or the wall cap has passed. */
export async function runReplay(options: ReplayOptions): Promise<ReplayResult> {
  const { clock, rows } = options;
  const agent: Dispatcher = createLoadAgent({ connections: options.maxInFlight, timeoutMs: options.requestTimeoutMs });
  const endOfRun = new AbortController();
  const tally = new OutcomeTally();
  const prefix = options.requestIdPrefix ?? `replay-${clock.wallNow().toString(36)}`;
  let promptsCapped = 0;
  let hitWallCap = false;
  let interrupted = false;
  const startedAt = clock.now();

  const run = runOpenLoop<ScheduledRow>({
    clock,
    items: rows,
    sendAtMs: (row) => row.sendAtMs,
    maxInFlight: options.maxInFlight,
    overflow: options.overflow,
    stopSendingAtMs: options.maxWallMs,
    send: async (row, index) => {
      if (row.contextTokens > options.maxPromptTokens) promptsCapped++;
      const spec = chatRequest({
        model: options.model,
        promptTokens: Math.min(row.contextTokens, options.maxPromptTokens),
        maxTokens: row.generatedTokens,
        stream: options.stream,
        seed: index,
        requestId: `${prefix}-${index}`,
      });
      tally.begin();
      const outcome = await timedRequest(agent, options.baseUrl, spec, clock, endOfRun.signal);
      if (outcome.kind === 'aborted' && !interrupted) tally.recordLost();
      else tally.record(outcome);
    },
  });

  const wallTimer = clock.setTimer(options.maxWallMs, () => {
    if (interrupted) return;
    hitWallCap = true;
    run.stop();
    endOfRun.abort(new Error(`replay passed its wall-clock cap of ${options.maxWallMs} ms`));
  });
  const onInterrupt = (): void => {
    if (hitWallCap) return;
    interrupted = true;
    run.stop();
    endOfRun.abort(new Error('replay interrupted'));
  };
  if (options.interrupt?.aborted === true) onInterrupt();
  else options.interrupt?.addEventListener('abort', onInterrupt, { once: true });
  const progressEvery = options.progressIntervalMs ?? 250;
  let progressTimer = options.onProgress === undefined ? undefined : clock.setTimer(progressEvery, reportProgress);
  function reportProgress(): void {
    options.onProgress?.({ planned: rows.length, sent: tally.sent, inFlight: run.inFlight, succeeded: tally.succeeded });
    progressTimer = clock.setTimer(progressEvery, reportProgress);
  }

  try {
    const schedule = await run.done;
    options.onProgress?.({ planned: rows.length, sent: tally.sent, inFlight: run.inFlight, succeeded: tally.succeeded });
    return { schedule, tally: tally.snapshot(), promptsCapped, wallMs: clock.now() - startedAt, hitWallCap, interrupted };
  } finally {
    wallTimer.cancel();
    progressTimer?.cancel();
    options.interrupt?.removeEventListener('abort', onInterrupt);
    await agent.close();
  }
}

// Below this share of successful responses the report warns even when no gate is set.
const WARN_SUCCESS_RATIO = 0.99;

/**
 * Returns the closing lines of the report with the exit status each implies. The OK line means
 * every request got exactly one response. A low share of successes only warns, unless
 * --min-success-ratio makes it fail the run.
 */
export function verdictLines(
  tally: { sent: number; succeeded: number; lost: number; transportErrors: number },
  schedule: { planned: number; skippedInFlight: number; notSent: number },
  minSuccessRatio: number,
): Array<{ text: string; exitCode: number }> {
  const lines: Array<{ text: string; exitCode: number }> = [];
  const unanswered = tally.lost + tally.transportErrors;
  if (unanswered > 0) {
    lines.push({ text: `\nFAILED: ${unanswered} of ${tally.sent} requests got no response (${tally.lost} lost, ${tally.transportErrors} transport errors)`, exitCode: 1 });
  } else {
    lines.push({ text: `\nOK: every one of ${tally.sent} requests got exactly one response`, exitCode: 0 });
  }
  const ratio = tally.sent === 0 ? 0 : tally.succeeded / tally.sent;
  const ratioText = `${tally.succeeded} of ${tally.sent} requests succeeded (${(ratio * 100).toFixed(1)}%)`;
  if (minSuccessRatio > 0 && ratio < minSuccessRatio) {
    lines.push({ text: `FAILED: only ${ratioText}, below --min-success-ratio ${minSuccessRatio}`, exitCode: 1 });
  } else if (tally.succeeded === 0 || ratio < WARN_SUCCESS_RATIO) {
    lines.push({ text: `WARNING: only ${ratioText}; see the status table above`, exitCode: 0 });
  }
  const unsent = schedule.skippedInFlight + schedule.notSent;
  if (unsent > 0) {
    lines.push({ text: `WARNING: ${unsent} of ${schedule.planned} planned requests were not sent (${schedule.skippedInFlight} at the in-flight limit, ${schedule.notSent} at the wall-clock cap)`, exitCode: 0 });
  }
  return lines;
}
