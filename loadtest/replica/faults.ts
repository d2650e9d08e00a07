// Fault settings of a replica: the JSON accepted by POST /sim/faults, its validation,
// and the per-request decision of which fault (if any) hits an inference request.
import { FAULT_ERROR_STATUSES, type ReplicaConfig } from './config.ts';

/** Active faults. Rates are probabilities from 0 to 1 applied to each inference request. */
export interface FaultSettings {
  /** Share of requests that get errorStatus instead of being served. */
  errorRate?: number;
  /** 500, 503 or 429; defaults to 503. */
  errorStatus?: number;
  /** Sends Retry-After with this many seconds on injected errors; unset sends none. */
  retryAfterSeconds?: number;
  /** Share of requests whose connection is reset (TCP RST) before response headers. */
  resetRate?: number;
  /** Streaming responses are reset after this many SSE events; unset never resets. */
  resetAfterChunks?: number;
  /** Share of requests accepted and left without a response. */
  hangRate?: number;
  /** The process exits this many milliseconds after the setting takes effect. */
  exitAfterMs?: number;
  /** Server keep-alive timeout while the fault is active, in milliseconds. */
  keepAliveTimeoutMs?: number;
}

export type FaultDecision = { kind: 'none' } | { kind: 'error'; status: number; retryAfterSeconds?: number } | { kind: 'reset' } | { kind: 'hang' };

/** A POST /sim/faults body that is not a valid FaultSettings object. */
export class FaultSettingsError extends Error {
  readonly code = 'invalid_fault_settings';
}

const RATE_FIELDS = ['errorRate', 'resetRate', 'hangRate'] as const;
const COUNT_FIELDS = [
  { field: 'retryAfterSeconds', min: 0, max: 86_400 },
  { field: 'resetAfterChunks', min: 0, max: 1_000_000 },
  { field: 'exitAfterMs', min: 0, max: 86_400_000 },
  { field: 'keepAliveTimeoutMs', min: 1, max: 3_600_000 },
] as const;
const KNOWN_FIELDS = new Set<string>(['errorStatus', ...RATE_FIELDS, ...COUNT_FIELDS.map((c) => c.field)]);

/** Validates a POST /sim/faults body and returns a frozen copy; throws FaultSettingsError naming the field. */
export function parseFaultSettings(body: unknown): Readonly<FaultSettings> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new FaultSettingsError(`invalid fault settings ${JSON.stringify(body)}: expected a JSON object`);
  }
  const input = body as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!KNOWN_FIELDS.has(key)) {
      throw new FaultSettingsError(`unknown fault field "${key}": expected one of ${[...KNOWN_FIELDS].join(', ')}`);
    }
  }
  const settings: FaultSettings = {};
  for (const field of RATE_FIELDS) {
    const value = input[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new FaultSettingsError(`invalid ${field} ${JSON.stringify(value)}: expected a number from 0 to 1`);
    }
    settings[field] = value;
  }
  for (const { field, min, max } of COUNT_FIELDS) {
    const value = input[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new FaultSettingsError(`invalid ${field} ${JSON.stringify(value)}: expected an integer from ${min} to ${max}`);
    }
    settings[field] = value;
  }
  if (input.errorStatus !== undefined) {
    const status = input.errorStatus;
    if (typeof status !== 'number' || !(FAULT_ERROR_STATUSES as readonly number[]).includes(status)) {
      throw new FaultSettingsError(
        `invalid errorStatus ${JSON.stringify(status)}: expected one of ${FAULT_ERROR_STATUSES.join(', ')}`,
      );
    }
    settings.errorStatus = status;
  }
  return Object.freeze(settings);
}

/** Builds the start-up fault settings from the --fault-* flags. */
export function faultsFromConfig(config: Readonly<ReplicaConfig>): Readonly<FaultSettings> {
  const settings: FaultSettings = {};
  if (config.faultErrorRate > 0) settings.errorRate = config.faultErrorRate;
  if (config.faultErrorRate > 0 || config.faultErrorStatus !== 503) settings.errorStatus = config.faultErrorStatus;
  if (config.faultRetryAfterS !== undefined) settings.retryAfterSeconds = config.faultRetryAfterS;
  if (config.faultResetRate > 0) settings.resetRate = config.faultResetRate;
  if (config.faultResetAfterChunks !== undefined) settings.resetAfterChunks = config.faultResetAfterChunks;
  if (config.faultHangRate > 0) settings.hangRate = config.faultHangRate;
  if (config.faultExitAfterMs !== undefined) settings.exitAfterMs = config.faultExitAfterMs;
  return Object.freeze(settings);
}

/**
 * Picks the fault for one inference request. Reset is checked first, then error, then hang,
 * each with its own draw, so rates of 1 make the outcome certain.
 */
export function decideFault(settings: Readonly<FaultSettings>, random: () => number): FaultDecision {
  if ((settings.resetRate ?? 0) > 0 && random() < (settings.resetRate ?? 0)) return { kind: 'reset' };
  if ((settings.errorRate ?? 0) > 0 && random() < (settings.errorRate ?? 0)) {
    const decision: FaultDecision = { kind: 'error', status: settings.errorStatus ?? 503 };
    if (settings.retryAfterSeconds !== undefined) decision.retryAfterSeconds = settings.retryAfterSeconds;
    return decision;
  }
  if ((settings.hangRate ?? 0) > 0 && random() < (settings.hangRate ?? 0)) return { kind: 'hang' };
  return { kind: 'none' };
}
