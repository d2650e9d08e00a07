// infergate_discovery_healthy reports, for models whose replica source can degrade, whether
// discovery is healthy. Static sources never degrade and get no series.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { GatewayMetrics } from '../../gateway/src/admin/metrics.ts';
import { buildConfig } from '../../gateway/src/config/load.ts';
import type { EndpointObservation, ReplicaSource } from '../../gateway/src/discovery/types.ts';
import { ModelRuntime } from '../../gateway/src/model-runtime.ts';
import { metricValue } from './helpers.ts';

const logger = createLogger({ service: 'discovery-metrics-test', level: 'silent' });

/** A replica source whose health the test sets, standing in for a watch that fails and recovers. */
class SwitchableSource implements ReplicaSource {
  isHealthy = true;
  start(onSnapshot: (endpoints: EndpointObservation[]) => void): Promise<void> {
    onSnapshot([]);
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  healthy(): boolean {
    return this.isHealthy;
  }
}

const runtimes: ModelRuntime[] = [];

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.close();
});

describe('discovery health metric', () => {
  test('the gauge follows the source health and is absent for static replicas', async () => {
    const config = buildConfig({
      models: [
        { name: 'watched', protocol: 'openai', replicas: { kubernetes: { namespace: 'ml', service: 'watched', port: 'http' } } },
        { name: 'fixed', protocol: 'openai', replicas: { static: ['http://127.0.0.1:9'] } },
      ],
    });
    const source = new SwitchableSource();
    const clock = new ManualClock();
    const holder: { runtimes: ModelRuntime[] } = { runtimes: [] };
    const metrics = new GatewayMetrics(() => holder.runtimes.map((runtime) => runtime.snapshot()), { defaultMetrics: false });
    const [watchedConfig, fixedConfig] = config.models;
    const watched = new ModelRuntime(watchedConfig!, { clock, logger, metrics, createSource: () => Promise.resolve({ source, reportsHealth: true }) });
    const fixed = new ModelRuntime(fixedConfig!, { clock, logger, metrics });
    holder.runtimes = [watched, fixed];
    runtimes.push(watched, fixed);
    await watched.start();
    await fixed.start();

    const healthyText = await metrics.registry.metrics();
    assert.equal(metricValue(healthyText, 'infergate_discovery_healthy', { model: 'watched' }), 1);
    assert.doesNotMatch(healthyText, /infergate_discovery_healthy\{model="fixed"\}/);

    source.isHealthy = false;
    const degradedText = await metrics.registry.metrics();
    assert.match(degradedText, /^infergate_discovery_healthy\{model="watched"\} 0$/m);

    source.isHealthy = true;
    assert.equal(metricValue(await metrics.registry.metrics(), 'infergate_discovery_healthy', { model: 'watched' }), 1);
  });
});
