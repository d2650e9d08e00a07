// An HTTPS client for the metrics API that presents an optional client certificate.
import { Agent, request } from 'undici';
import type { Pem } from './pki.ts';

export interface ApiResponse {
  status: number;
  body: Record<string, unknown>;
  contentType: string | undefined;
  allow: string | undefined;
}

export class ApiClient {
  readonly #agent: Agent;
  readonly #base: string;
  readonly #headers: Record<string, string | string[]>;

  /** `headers` go with every request, such as the user headers the front proxy sets. */
  constructor(base: string, options: { ca?: string; client?: Pem; headers?: Record<string, string | string[]> } = {}) {
    this.#base = base;
    this.#headers = options.headers ?? {};
    this.#agent = new Agent({
      connect: {
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.client ? { cert: options.client.cert, key: options.client.key } : {}),
        servername: 'localhost',
      },
    });
  }

  /** `headers` are added to the client's own for this request. */
  async get(path: string, headers: Record<string, string | string[]> = {}): Promise<ApiResponse> {
    return this.send('GET', path, headers);
  }

  /** Sends a request with any method. The response to HEAD has an empty body. */
  async send(method: 'GET' | 'HEAD' | 'POST' | 'DELETE', path: string, headers: Record<string, string | string[]> = {}): Promise<ApiResponse> {
    const response = await request(`${this.#base}${path}`, { method, dispatcher: this.#agent, headers: { ...this.#headers, ...headers }, signal: AbortSignal.timeout(10_000) });
    const text = await response.body.text();
    const contentType = response.headers['content-type'];
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { text };
    }
    const allow = response.headers.allow;
    return { status: response.statusCode, body, contentType: typeof contentType === 'string' ? contentType : undefined, allow: typeof allow === 'string' ? allow : undefined };
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

/** Builds the metric path for a namespace, with an optional label selector. */
export function metricPath(namespace: string, metric = 'infergate_demand', selector?: string): string {
  const query = selector === undefined ? '' : `?labelSelector=${encodeURIComponent(selector)}`;
  return `/apis/external.metrics.k8s.io/v1beta1/namespaces/${namespace}/${metric}${query}`;
}
