// Shared fixtures of the gateway tests: simulated replicas as child processes, a gateway
// started in-process on loopback port 0, and polling helpers that wait for conditions
// instead of sleeping.
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { buildConfig } from '../../gateway/src/config/load.ts';
import { startGateway, type GatewayDeps, type RunningGateway } from '../../gateway/src/gateway.ts';

export type { SpawnedReplica };

/** Loopback-only replica with its port picked by the system. */
export function startReplica(protocol: 'openai' | 'v2', model: string, extra: string[] = []): Promise<SpawnedReplica> {
  return spawnReplica(['--protocol', protocol, '--model', model, '--port', '0', ...extra]);
}

export interface TestGateway extends RunningGateway {
  metricsText(): Promise<string>;
}

/** Starts a gateway on loopback with fast probes; models are partial model configs. */
export async function startTestGateway(models: Record<string, unknown>[], deps: GatewayDeps = {}, server: Record<string, unknown> = {}): Promise<TestGateway> {
  const config = buildConfig({
    server: { port: 0, adminPort: 0, host: '127.0.0.1', shutdownGraceMs: 2000, ...server },
    models: models.map((model) => ({ health: { intervalMs: 200, timeoutMs: 150 }, ...model })),
  });
  const gateway = await startGateway(config, { logger: createLogger({ service: 'gateway-test', level: 'silent' }), defaultMetrics: false, ...deps });
  return {
    ...gateway,
    metricsText: async () => (await fetch(`${gateway.adminUrl}/metrics`)).text(),
  };
}

/** Polls condition every 20 ms until it returns a truthy value or timeoutMs passes. */
export async function waitFor<T>(condition: () => T | Promise<T>, description: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const started = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until every replica of every model in the gateway is ready. */
export async function waitReady(gateway: RunningGateway, replicasPerModel = 1): Promise<void> {
  await waitFor(
    () => gateway.state().models.every((model) => model.replicas.filter((replica) => replica.state === 'ready').length >= replicasPerModel),
    'replicas to become ready',
  );
}

// Response bodies are arbitrary JSON that tests index freely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; headers: Headers; body: Json; text: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal === undefined ? {} : { signal }),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

/** Value of one sample in Prometheus text, or 0 when the series is absent. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
    if (matches) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

export function chatBody(model: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model, messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: 4, ...extra };
}
