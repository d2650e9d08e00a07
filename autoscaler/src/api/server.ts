// The external metrics API (external.metrics.k8s.io/v1beta1) served to the HPA controller
// through the Kubernetes aggregation layer. The kube-apiserver's front proxy connects with
// a client certificate signed by the request-header CA; that certificate is the caller's
// authentication. Callers without one get 401, callers whose common name is not in
// allowedNames get 403. With an authorizer, the end user that the front proxy names in the
// request headers is then authorized for the request (see authorizer.ts). As in the generic
// Kubernetes API server, a missing user header is 401, a denial 403 and a failed review 500.
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { maxHeaderSize, STATUS_CODES } from 'node:http';
import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from '../../../shared/src/logger.ts';
import type { AutoscalerMetrics } from '../metrics.ts';
import { DEMAND_METRIC } from '../config/defaults.ts';
import { formatQuantity } from './quantity.ts';
import { matchesSelector, parseSelector, SelectorError, type Requirement } from './selector.ts';
import {
  GROUP,
  GROUP_VERSION,
  apiGroupDocument,
  apiGroupListDocument,
  apiResourceListDocument,
  externalMetricValueListDocument,
  formatKubeTime,
  statusDocument,
  type StatusReason,
} from './documents.ts';
import type { TlsMaterial } from './tls.ts';
import { AuthorizationError, type RequestAuthorizer } from './authorizer.ts';
import { forbiddenMessage, requestAttributes, userFromHeaders, type RequestHeaderNames, type RequestUser } from './request-user.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authorized end user; undefined when authorization is off. */
    endUser?: RequestUser;
  }
}

/** One model's served value as the controller published it after the last poll. */
export interface ServedModel {
  name: string;
  /** Namespace of the model's scale target; only requests for this namespace see the model. */
  namespace: string;
  /** Undefined while the data is stale or not yet collected, so the API returns 503. */
  value: number | undefined;
  /** Epoch milliseconds of the newest gateway response the value is based on. */
  sampledAt: number;
}

export interface ServedModelSource {
  servedModels(): readonly ServedModel[];
  /** Reason that no metric can be served yet, sent with a 503; undefined once values can be served. */
  unavailableReason?(): string | undefined;
}

export interface MetricsApiOptions {
  logger: Logger;
  metrics: AutoscalerMetrics;
  source: ServedModelSource;
  /** Undefined: plain HTTP (local mode with --insecure-http). */
  tls: TlsMaterial | undefined;
  /** Returns the common names accepted from client certificates; empty accepts any name the CA signed. */
  allowedNames: () => readonly string[];
  /** Undefined: no authorization, every authenticated caller may read everything. */
  authorizer?: RequestAuthorizer;
  /** Header names of the user, groups and extra attributes; read on each request because the cluster may change them. */
  requestHeaderNames?: () => RequestHeaderNames;
  /** Names of the settings that messages refer to: config keys by default, the flags in local mode. */
  settingNames?: SettingNames;
}

export interface SettingNames {
  /** Source of the allowed common names, such as metricsApi.allowedNames or --allowed-name. */
  allowedNames: string;
  /** The stale-data limit, such as "staleAfterMs (5000 ms)". */
  staleAfter: string;
}

const CONFIG_SETTING_NAMES: SettingNames = { allowedNames: 'metricsApi.allowedNames', staleAfter: 'staleAfterMs' };

/** Paths served without a client certificate, for kubelet probes. */
const UNAUTHENTICATED_PATHS = new Set(['/healthz', '/livez', '/readyz']);

export interface MetricsApiServer {
  app: FastifyInstance;
  /** Replaces certificate, key and client CA on the running server. */
  updateTls(material: TlsMaterial): void;
}

export function createMetricsApiServer(options: MetricsApiOptions): MetricsApiServer {
  const { logger, metrics, source, tls } = options;
  const settingNames = options.settingNames ?? CONFIG_SETTING_NAMES;
  const https = tls
    ? {
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        // The certificate is checked in the onRequest hook, so a caller without one gets
        // a 401 Status document instead of a failed handshake.
        requestCert: tls.ca !== undefined,
        rejectUnauthorized: false,
      }
    : null;
  const common = {
    loggerInstance: logger.child({ component: 'metrics-api' }),
    logController: new LogController({ disableRequestLogging: true }),
    // The Kubernetes API server registers its routes for GET only and answers HEAD with 405.
    exposeHeadRoutes: false,
    clientErrorHandler: (error: NodeJS.ErrnoException, socket: Duplex) => {
      writeClientErrorStatus(error, socket, metrics);
    },
  };
  const app = (https ? Fastify({ https, ...common }) : Fastify(common)) as unknown as FastifyInstance;
  const authenticate = tls?.ca !== undefined;

  app.addHook('onResponse', async (_request, reply) => {
    metrics.apiRequests.inc({ code: String(reply.statusCode) });
  });

  app.addHook('onRequest', async (request, reply) => {
    if (!authenticate || UNAUTHENTICATED_PATHS.has(request.url)) return;
    const socket = request.raw.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    if (!peer || Object.keys(peer).length === 0) {
      return sendStatus(reply, 'Unauthorized', 'a client certificate signed by the request-header CA is required');
    }
    if (!socket.authorized) {
      request.log.info({ subject: peer.subject?.CN, error: String(socket.authorizationError) }, 'rejected client certificate');
      return sendStatus(reply, 'Unauthorized', `the client certificate is not valid for this server: ${String(socket.authorizationError)}`);
    }
    const commonName = peer.subject?.CN;
    const name = Array.isArray(commonName) ? commonName[0] : commonName;
    const allowed = options.allowedNames();
    if (allowed.length > 0 && (name === undefined || !allowed.includes(name))) {
      request.log.info({ commonName: name }, 'rejected client certificate: common name not allowed');
      return sendStatus(reply, 'Forbidden', `client certificate common name ${JSON.stringify(name ?? '')} is not in ${settingNames.allowedNames}`);
    }
    return undefined;
  });

  const { authorizer, requestHeaderNames } = options;
  if (authorizer) {
    if (!authenticate || !requestHeaderNames) {
      // The user headers are trusted only from a caller whose certificate was verified.
      throw new Error('delegated authorization needs client certificate authentication (a client CA) and the request-header names');
    }
    // Runs after the certificate check above: hooks run in the order they were added.
    app.addHook('onRequest', async (request, reply) => {
      if (UNAUTHENTICATED_PATHS.has(request.url)) return undefined;
      const names = requestHeaderNames();
      const user = userFromHeaders(request.raw, names);
      if (user === undefined) {
        return sendStatus(reply, 'Unauthorized', `no user named in the request: the front proxy must send the authenticated user in ${names.usernameHeaders.join(' or ')} (requestheader-username-headers)`);
      }
      const attributes = requestAttributes(request.method, request.url);
      let decision;
      try {
        decision = await authorizer.authorize(user, attributes);
      } catch (error) {
        if (error instanceof AuthorizationError) return sendStatus(reply, 'InternalError', error.message);
        throw error;
      }
      if (!decision.allowed) {
        request.log.info({ user: user.name, groups: user.groups, attributes, reason: decision.reason }, 'request forbidden');
        const details = attributes.kind === 'resource' ? { group: attributes.group, kind: attributes.resource } : undefined;
        return sendStatus(reply, 'Forbidden', forbiddenMessage(user, attributes, decision.reason), details);
      }
      request.endUser = user;
      return undefined;
    });
  }

  app.get('/healthz', async () => 'ok');
  app.get('/livez', async () => 'ok');
  app.get('/readyz', async () => 'ok');
  app.get('/apis', async () => apiGroupListDocument());
  app.get(`/apis/${GROUP}`, async () => apiGroupDocument());
  app.get(`/apis/${GROUP_VERSION}`, async () => apiResourceListDocument([DEMAND_METRIC]));

  app.get<{ Params: { namespace: string; metric: string }; Querystring: { labelSelector?: string | string[] } }>(
    `/apis/${GROUP_VERSION}/namespaces/:namespace/:metric`,
    async (request, reply) => {
      const { namespace, metric } = request.params;
      if (metric.toLowerCase() !== DEMAND_METRIC) {
        return sendStatus(reply, 'NotFound', `metric ${JSON.stringify(metric)} not found in namespace ${JSON.stringify(namespace)}; this server serves ${DEMAND_METRIC}`, {
          name: metric,
          group: GROUP,
          kind: 'ExternalMetricValueList',
        });
      }

      const rawSelector = request.query.labelSelector;
      if (Array.isArray(rawSelector)) {
        return sendStatus(reply, 'BadRequest', 'labelSelector was given more than once; combine the requirements with commas');
      }
      let requirements: Requirement[];
      try {
        requirements = parseSelector(rawSelector ?? '');
      } catch (error) {
        if (error instanceof SelectorError) return sendStatus(reply, 'BadRequest', error.message);
        throw error;
      }

      const unavailable = source.unavailableReason?.();
      if (unavailable !== undefined) return sendStatus(reply, 'ServiceUnavailable', unavailable);
      const matching = source.servedModels().filter((m) => m.namespace === namespace && matchesSelector(requirements, { model: m.name }));
      const unknown = matching.filter((m) => m.value === undefined);
      if (unknown.length > 0) {
        const names = unknown.map((m) => JSON.stringify(m.name)).join(', ');
        const [noun, pronoun] = unknown.length === 1 ? ['model', 'it'] : ['models', 'them'];
        return sendStatus(
          reply,
          'ServiceUnavailable',
          `no fresh gateway data for ${noun} ${names}: every gateway failed or omitted ${pronoun} for longer than ${settingNames.staleAfter}; check infergate_autoscaler_source_up`,
        );
      }
      const items = matching.map((m) => ({
        metricName: DEMAND_METRIC,
        metricLabels: { model: m.name },
        timestamp: formatKubeTime(m.sampledAt),
        value: formatQuantity(m.value!),
      }));
      request.log.debug({ namespace, selector: rawSelector ?? '', user: request.endUser?.name, items: items.length }, 'served external metric');
      return externalMetricValueListDocument(items);
    },
  );

  app.setNotFoundHandler(async (request, reply) => {
    if (request.method !== 'GET') {
      return sendStatus(reply.header('allow', 'GET'), 'MethodNotAllowed', `method ${request.method} is not supported; this API is read-only (GET)`);
    }
    return sendStatus(reply, 'NotFound', `path ${JSON.stringify(request.url.split('?')[0])} not found; the API is served under /apis/${GROUP_VERSION}`);
  });

  app.setErrorHandler(async (error, request, reply) => {
    request.log.error({ err: error, url: request.url }, 'metrics API request failed');
    return sendStatus(reply, 'InternalError', 'internal error while serving the metric; see the autoscaler log');
  });

  return {
    app,
    updateTls(material: TlsMaterial) {
      const server = app.server as unknown as { setSecureContext?: (options: object) => void };
      if (!server.setSecureContext) throw new Error('the metrics API serves plain HTTP; there are no certificates to update');
      server.setSecureContext({ cert: material.cert, key: material.key, ca: material.ca });
    },
  };
}

function sendStatus(reply: FastifyReply, reason: StatusReason, message: string, details?: { name?: string; group?: string; kind?: string }): FastifyReply {
  const document = statusDocument(reason, message, details);
  return reply.code(document.code).type('application/json').send(document);
}


/**
 * Answers a request that failed before routing (headers over Node's size limit, a header
 * timeout, malformed HTTP) with a Status document, as every other error of this API.
 */
function writeClientErrorStatus(error: NodeJS.ErrnoException, socket: Duplex, metrics: AutoscalerMetrics): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let document;
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    document = statusDocument('RequestEntityTooLarge', `the request line and headers exceed ${maxHeaderSize} bytes; shorten the labelSelector`);
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    document = statusDocument('Timeout', 'the request headers did not arrive in time');
  } else {
    document = statusDocument('BadRequest', `malformed HTTP request: ${error.code ?? error.message}`);
  }
  metrics.apiRequests.inc({ code: String(document.code) });
  if (socket.writable) {
    const body = JSON.stringify(document);
    socket.write(`HTTP/1.1 ${document.code} ${STATUS_CODES[document.code] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}
