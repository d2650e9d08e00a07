// Assembles the autoscaler from a validated config: the gateway list, the collector, the
// controller loop, the metrics API and the admin server. main.ts runs it as a process;
// tests call startAutoscaler() directly.
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { systemClock, type Clock } from '../../shared/src/clock.ts';
import type { Logger } from '../../shared/src/logger.ts';
import type { AutoscalerConfig } from './config/load.ts';
import { Collector } from './collector/collector.ts';
import { Controller } from './controller.ts';
import { createGatewayList } from './gateways.ts';
import { createMetrics, type AutoscalerMetrics } from './metrics.ts';
import { createMetricsApiServer, type SettingNames } from './api/server.ts';
import { CertificateReloader, loadTlsMaterial, type TlsMaterial } from './api/tls.ts';
import { createAdminServer } from './admin-server.ts';
import { KubeActuator, type Actuator } from './kube/actuator.ts';
import { DryRunActuator } from './kube/dry-run.ts';
import { readRequestHeaderSettings, resolveRequestHeaderNames } from './kube/request-header.ts';
import { DelegatedAuthorizer } from './api/authorizer.ts';
import type { RequestHeaderNames } from './api/request-user.ts';
import { DEFAULTS } from './config/defaults.ts';

export interface AutoscalerDeps {
  logger: Logger;
  clock?: Clock;
  /** Required in cluster mode, and for gateways.kubernetes. */
  kubeConfig?: KubeConfig;
  /** Overrides the actuator, for tests that need no cluster in cluster mode. */
  actuator?: Actuator;
  metrics?: AutoscalerMetrics;
}

export interface RunningAutoscaler {
  controller: Controller;
  metrics: AutoscalerMetrics;
  /** Base URL of the metrics API, such as https://127.0.0.1:6443. */
  apiUrl: string;
  adminUrl: string;
  /** Self-signed certificate PEM when no certificate files are configured, for clients to trust. */
  generatedCertificate: string | undefined;
  stop(): Promise<void>;
}

export async function startAutoscaler(config: AutoscalerConfig, deps: AutoscalerDeps): Promise<RunningAutoscaler> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger;
  const metrics = deps.metrics ?? createMetrics();

  if (config.mode === 'cluster' && !deps.kubeConfig && !deps.actuator) {
    throw new Error('cluster mode needs a Kubernetes client configuration; run with --gateway for local mode without a cluster');
  }
  const actuator = deps.actuator ?? (config.mode === 'local' ? new DryRunActuator(logger.child({ component: 'actuator' })) : new KubeActuator({ kubeConfig: deps.kubeConfig!, clock, logger: logger.child({ component: 'actuator' }), timeoutMs: config.kubernetesTimeoutMs }));

  const gateways = createGatewayList(config.gateways, { logger, clock, ...(deps.kubeConfig ? { kubeConfig: deps.kubeConfig } : {}) });
  const collector = new Collector({ clock, logger: logger.child({ component: 'collector' }), metrics, requestTimeoutMs: config.requestTimeoutMs, staleAfterMs: config.staleAfterMs });
  const controller = new Controller({ config, clock, logger: logger.child({ component: 'controller' }), metrics, collector, gateways, actuator });

  const api = config.metricsApi;
  let tls: TlsMaterial | undefined;
  let allowedNames: readonly string[] = api.allowedNames;
  let clusterCA: string | undefined;
  let headerNames: RequestHeaderNames = resolveRequestHeaderNames(api.requestHeader);
  if (api.clientCAFromCluster) {
    if (!deps.kubeConfig) throw new Error('metricsApi.clientCAFromCluster needs a Kubernetes client configuration');
    const settings = await readRequestHeaderSettings(deps.kubeConfig, config.kubernetesTimeoutMs);
    clusterCA = settings.clientCA;
    // Names in the config take precedence; otherwise the cluster's list applies.
    if (api.allowedNames.length === 0) allowedNames = settings.allowedNames;
    headerNames = resolveRequestHeaderNames(api.requestHeader, settings.headers);
  }
  if (!api.insecureHttp) {
    const material = loadTlsMaterial({ certFile: api.tlsCertFile, keyFile: api.tlsKeyFile, caFile: api.clientCAFile }, tlsHosts(config.listenHost));
    tls = { ...material, ca: clusterCA ?? material.ca };
  }
  let authorizer: DelegatedAuthorizer | undefined;
  if (api.authorization.mode === 'delegated') {
    if (!deps.kubeConfig) throw new Error('metricsApi.authorization.mode delegated needs a Kubernetes client configuration; set it to none to serve every authenticated caller');
    authorizer = new DelegatedAuthorizer({
      kubeConfig: deps.kubeConfig,
      clock,
      logger: logger.child({ component: 'authorizer' }),
      metrics,
      allowTtlMs: api.authorization.allowTtlMs,
      denyTtlMs: api.authorization.denyTtlMs,
      cacheSize: api.authorization.cacheSize,
      timeoutMs: config.kubernetesTimeoutMs,
      alwaysAllowGroups: DEFAULTS.metricsApi.authorization.alwaysAllowGroups,
    });
  }
  const apiServer = createMetricsApiServer({
    logger,
    metrics,
    source: controller,
    tls,
    allowedNames: () => allowedNames,
    settingNames: settingNamesOf(config),
    ...(authorizer ? { authorizer, requestHeaderNames: () => headerNames } : {}),
  });
  let stopping = false;
  const admin = createAdminServer({
    logger,
    metrics,
    notReadyReason: () => {
      if (stopping) return 'shutting down';
      if (controller.completedPolls === 0) return 'first poll of the gateways not finished';
      return undefined;
    },
  });

  /** Applies new material, keeping the CA read from the cluster when there is one. */
  const applyTls = (material: TlsMaterial) => {
    tls = { ...material, ca: clusterCA ?? material.ca };
    apiServer.updateTls(tls);
  };
  const reloader =
    tls && (api.tlsCertFile || api.clientCAFile)
      ? new CertificateReloader({
          files: { certFile: api.tlsCertFile, keyFile: api.tlsKeyFile, caFile: api.clientCAFile },
          intervalMs: api.certReloadIntervalMs,
          logger,
          current: () => tls!,
          apply: applyTls,
        })
      : undefined;

  // The cluster rotates the front-proxy CA in the ConfigMap, so it is re-read as often as
  // the files. A failing read is logged once when it starts failing and once on recovery.
  let clusterRefresh: NodeJS.Timeout | undefined;
  let refreshing = false;
  let refreshFailing = false;
  const refreshClusterCA = async () => {
    if (refreshing) return;
    refreshing = true;
    try {
      const settings = await readRequestHeaderSettings(deps.kubeConfig!, config.kubernetesTimeoutMs);
      if (refreshFailing) logger.info('reading the request-header client CA from the cluster works again');
      refreshFailing = false;
      if (api.allowedNames.length === 0) allowedNames = settings.allowedNames;
      headerNames = resolveRequestHeaderNames(api.requestHeader, settings.headers);
      if (settings.clientCA !== clusterCA && tls) {
        clusterCA = settings.clientCA;
        applyTls(tls);
        logger.info('reloaded the request-header client CA from the cluster');
      }
    } catch (error) {
      if (!refreshFailing) logger.warn({ err: error }, 'cannot refresh the request-header client CA; keeping the previous one and retrying');
      refreshFailing = true;
    } finally {
      refreshing = false;
    }
  };

  const local = config.mode === 'local';
  const hostName = local ? '--host' : 'listenHost';
  try {
    await gateways.start();
    await listenOn(() => apiServer.app.listen({ host: config.listenHost, port: api.port }), hostName, local ? '--port' : 'metricsApi.port', config.listenHost, api.port);
    await listenOn(() => admin.listen({ host: config.listenHost, port: config.adminPort }), hostName, local ? '--admin-port' : 'adminPort', config.listenHost, config.adminPort);
  } catch (error) {
    await Promise.allSettled([gateways.stop(), apiServer.app.close(), admin.close(), collector.close()]);
    throw error;
  }
  reloader?.start();
  if (api.clientCAFromCluster) {
    clusterRefresh = setInterval(() => void refreshClusterCA(), api.certReloadIntervalMs);
    clusterRefresh.unref();
  }
  controller.start();

  const apiUrl = urlOf(tls ? 'https' : 'http', apiServer.app.server.address() as AddressInfo);
  const adminUrl = urlOf('http', admin.server.address() as AddressInfo);
  const accessWarning = accessWarningOf(config);
  if (accessWarning) logger.warn({ apiUrl }, accessWarning);
  let tlsSource = 'off';
  if (tls) tlsSource = api.tlsCertFile ? 'files' : 'self-signed';
  let clientAuth = 'off';
  if (api.clientCAFromCluster) clientAuth = 'cluster ConfigMap';
  else if (api.clientCAFile) clientAuth = 'file';
  logger.info(
    {
      mode: config.mode,
      apiUrl,
      adminUrl,
      tls: tlsSource,
      clientAuth,
      authorization: api.authorization.mode,
      ...(authorizer ? { requestHeader: headerNames } : {}),
      gateways: config.gateways,
      models: config.models.map((m) => m.name),
      dryRun: actuator.dryRun,
    },
    'autoscaler started',
  );

  return {
    controller,
    metrics,
    apiUrl,
    adminUrl,
    generatedCertificate: tls && !api.tlsCertFile ? tls.cert : undefined,
    async stop() {
      stopping = true;
      reloader?.stop();
      if (clusterRefresh) clearInterval(clusterRefresh);
      await controller.stop();
      await Promise.allSettled([gateways.stop(), apiServer.app.close(), admin.close()]);
      await collector.close();
      logger.info('autoscaler stopped');
    },
  };
}

/** Raised when a listener cannot bind; the message names the settings of the address and port. */
export class ListenError extends Error {
  readonly code = 'INFERGATE_AUTOSCALER_LISTEN_FAILED';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ListenError';
  }
}

async function listenOn(listen: () => Promise<unknown>, hostName: string, portName: string, host: string, port: number): Promise<void> {
  try {
    await listen();
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    let advice = `check ${hostName} and ${portName}`;
    if (code === 'EADDRINUSE') advice = `another process uses port ${port}; stop it or choose another ${portName}`;
    else if (code === 'ENOTFOUND' || code === 'EADDRNOTAVAIL') advice = `${hostName} must be an address of this machine, such as 127.0.0.1 or 0.0.0.0`;
    else if (code === 'EACCES') advice = `ports below 1024 need privileges; choose another ${portName}`;
    throw new ListenError(`cannot listen on ${hostName} ${JSON.stringify(host)} ${portName} ${port}: ${code ?? message}; ${advice}`, { cause: error });
  }
}

/** Returns the names the metrics API's messages use for settings: the flags in local mode, the config keys otherwise. */
function settingNamesOf(config: AutoscalerConfig): SettingNames {
  if (config.mode === 'local') return { allowedNames: '--allowed-name', staleAfter: `${config.staleAfterMs} ms` };
  const api = config.metricsApi;
  const fromCluster = api.clientCAFromCluster && api.allowedNames.length === 0;
  return {
    allowedNames: fromCluster ? 'requestheader-allowed-names of the ConfigMap kube-system/extension-apiserver-authentication' : 'metricsApi.allowedNames',
    staleAfter: `staleAfterMs (${config.staleAfterMs} ms)`,
  };
}

/**
 * Returns the start-up warning for a metrics API that lets every caller it accepts read
 * every model's demand. The warning names those callers, because they depend on TLS and the CA.
 */
function accessWarningOf(config: AutoscalerConfig): string | undefined {
  const api = config.metricsApi;
  if (api.authorization.mode !== 'none') return undefined;
  const local = config.mode === 'local';
  const loopback = local ? '; it listens on loopback unless --host is set' : '';
  if (api.insecureHttp) {
    return `the metrics API serves plain HTTP without authentication or authorization (${local ? '--insecure-http' : 'metricsApi.insecureHttp'}): every caller that can connect may read the demand of every model${loopback}`;
  }
  if (!api.clientCAFile && !api.clientCAFromCluster) {
    return `the metrics API checks no client certificates${local ? ' (no --client-ca)' : ''}: every caller that can connect may read the demand of every model${loopback}`;
  }
  if (local) {
    const names = api.allowedNames.length > 0 ? ' with a name given by --allowed-name' : '';
    return `metrics API authorization is off (local mode has no cluster to ask): every caller with a client certificate signed by --client-ca${names} may read the demand of every model`;
  }
  return 'metrics API authorization is off (metricsApi.authorization.mode none): every caller that passes the client certificate check may read the demand of every model';
}

function tlsHosts(listenHost: string): string[] {
  const hosts = new Set(['localhost', '127.0.0.1', '::1']);
  if (listenHost !== '0.0.0.0' && listenHost !== '::') hosts.add(listenHost);
  return [...hosts];
}

function urlOf(scheme: string, address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}
