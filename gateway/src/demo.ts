// The embedded demo run by `npm start` without a config file: simulated replicas started
// as child processes, and a configuration that puts the gateway in front of them.
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { buildConfig, type GatewayConfig } from './config/load.ts';

export const DEMO_MODELS = {
  chat: 'demo-chat',
  embeddings: 'demo-embeddings',
  v2: 'demo-v2',
} as const;

/** Simulated replicas started for each demo model. */
const REPLICAS_PER_MODEL = 2;

export interface Demo {
  config: GatewayConfig;
  replicas: SpawnedReplica[];
  /** Stops every replica the demo started. */
  stop(): Promise<void>;
}

export async function startDemo(ports: { port: number; adminPort: number }): Promise<Demo> {
  const replicas: SpawnedReplica[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(replicas.map((replica) => replica.stop('SIGTERM')));
  };
  try {
    const spawnMany = async (args: string[]): Promise<string[]> => {
      const started = await Promise.all(Array.from({ length: REPLICAS_PER_MODEL }, () => spawnReplica(args)));
      replicas.push(...started);
      return started.map((replica) => replica.url);
    };
    const [chatUrls, embeddingUrls, v2Urls] = await Promise.all([
      spawnMany(['--protocol', 'openai', '--model', DEMO_MODELS.chat, '--port', '0']),
      spawnMany(['--protocol', 'openai', '--model', DEMO_MODELS.embeddings, '--port', '0']),
      spawnMany(['--protocol', 'v2', '--model', DEMO_MODELS.v2, '--port', '0']),
    ]);
    const config = buildConfig(
      {
        server: { port: ports.port, adminPort: ports.adminPort, host: '127.0.0.1', shutdownGraceMs: 10_000 },
        models: [
          { name: DEMO_MODELS.chat, protocol: 'openai', replicas: { static: chatUrls }, health: { intervalMs: 2000, timeoutMs: 1000 } },
          { name: DEMO_MODELS.embeddings, protocol: 'openai', replicas: { static: embeddingUrls }, health: { intervalMs: 2000, timeoutMs: 1000 } },
          { name: DEMO_MODELS.v2, protocol: 'v2', replicas: { static: v2Urls }, health: { intervalMs: 2000, timeoutMs: 1000 } },
        ],
      },
      'the embedded demo',
    );
    return { config, replicas, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Formats the text printed once the demo is up: URLs and requests to try. */
export function demoBanner(trafficUrl: string, adminUrl: string): string {
  const chat = JSON.stringify({ model: DEMO_MODELS.chat, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 16 });
  const stream = JSON.stringify({ model: DEMO_MODELS.chat, messages: [{ role: 'user', content: 'Count to five.' }], max_tokens: 16, stream: true });
  const embeddings = JSON.stringify({ model: DEMO_MODELS.embeddings, input: ['first text', 'second text'] });
  const infer = JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }] });
  return [
    '',
    'infergate demo is running (simulated replicas, two per model)',
    `  traffic: ${trafficUrl}`,
    `  admin:   ${adminUrl}  (/metrics, /healthz, /readyz, /admin/state)`,
    '',
    'Try:',
    `  curl -s ${trafficUrl}/v1/models`,
    `  curl -s ${trafficUrl}/v1/chat/completions -H 'content-type: application/json' -d '${chat}'`,
    `  curl -sN ${trafficUrl}/v1/chat/completions -H 'content-type: application/json' -d '${stream}'`,
    `  curl -s ${trafficUrl}/v1/embeddings -H 'content-type: application/json' -d '${embeddings}'`,
    `  curl -s ${trafficUrl}/v2/models/${DEMO_MODELS.v2}/infer -H 'content-type: application/json' -d '${infer}'`,
    `  curl -s ${adminUrl}/admin/state`,
    '',
    'Stop with Ctrl-C.',
    '',
  ].join('\n');
}
