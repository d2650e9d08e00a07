// Gateway configurations for the benchmarks and the checks that a started gateway is ready
// to route: its config file, and polling /admin/state until the replicas passed a probe.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { stringify } from 'yaml';
import type { GatewayState } from '../../shared/src/admin-state.ts';

export interface BenchModel {
  name: string;
  protocol: 'openai' | 'v2';
  replicaUrls: string[];
  maxInflightPerReplica: number;
  maxBatchSize: number;
  queueMaxSize: number;
}

/**
 * Writes a gateway config for the benchmark models and returns its path. Health probes run
 * every second so that a new gateway routes within a second or two. Everything else keeps
 * the gateway's defaults, so the benchmark measures the configuration users get.
 */
export async function writeGatewayConfig(workDir: string, fileName: string, models: readonly BenchModel[]): Promise<string> {
  const config = {
    server: { host: '127.0.0.1' },
    models: models.map((model) => ({
      name: model.name,
      protocol: model.protocol,
      replicas: { static: model.replicaUrls },
      maxInflightPerReplica: model.maxInflightPerReplica,
      queue: { maxSize: model.queueMaxSize, timeoutMs: 60_000 },
      batching: { maxBatchSize: model.maxBatchSize, maxDelayMs: 0 },
      health: { intervalMs: 1000, timeoutMs: 500 },
    })),
  };
  const configPath = path.join(workDir, fileName);
  await writeFile(configPath, stringify(config));
  return configPath;
}

/** Fetches and parses GET /admin/state. */
export async function fetchGatewayState(adminUrl: string): Promise<GatewayState> {
  const response = await request(new URL('/admin/state', adminUrl), { method: 'GET', headersTimeout: 5_000, bodyTimeout: 5_000 });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Error(`GET ${adminUrl}/admin/state failed with status ${response.statusCode}`);
  }
  return (await response.body.json()) as GatewayState;
}

/** Polls /admin/state until `model` has at least `count` replicas in state ready. */
export async function waitForReadyReplicas(adminUrl: string, model: string, count: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = 'no state yet';
  while (Date.now() < deadline) {
    try {
      const state = await fetchGatewayState(adminUrl);
      const entry = state.models.find((candidate) => candidate.name === model);
      const ready = entry?.replicas.filter((replica) => replica.state === 'ready').length ?? 0;
      if (ready >= count) return;
      seen = entry === undefined ? `model ${model} not listed` : `${ready} of ${count} replicas ready`;
    } catch (error) {
      seen = (error as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`model ${model} did not get ${count} ready replicas within ${timeoutMs} ms (last: ${seen})`);
}
