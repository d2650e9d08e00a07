// One active health probe: GET path on the replica, passing on any 2xx within timeoutMs.
import type { Pool } from 'undici';

export interface ProbeResult {
  passed: boolean;
  /** Status code or error message of a failed probe, for the log line of a state change. */
  detail?: string;
}

export async function probeReplica(pool: Pool, path: string, timeoutMs: number): Promise<ProbeResult> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const response = await pool.request({ method: 'GET', path, signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await response.body.dump();
    const passed = response.statusCode >= 200 && response.statusCode < 300;
    return passed ? { passed } : { passed, detail: `status ${response.statusCode}` };
  } catch (error) {
    // A refused connection, reset or timeout is a failed probe; the caller logs it when the state changes.
    return { passed: false, detail: error instanceof Error ? error.message : String(error) };
  }
}
