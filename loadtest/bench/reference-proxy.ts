// A minimal inference proxy on fastify and undici, which the overhead benchmark measures in
// the same rounds as the gateway as a floor. Per request it receives the body, parses its
// JSON to read the model, forwards the bytes to one replica, buffers the reply and sends it
// back. It has no queue, validation, metrics, deadlines or retries. The gap between it and
// the gateway is what those features cost, and the gap between it and the direct path is
// what any proxy on this stack and machine costs.
import Fastify, { type FastifyReply } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';
import { parseLoopbackUrl, parseNumberFlag } from './cli-support.ts';

const USAGE = `Usage: node_modules/.bin/node loadtest/bench/reference-proxy.ts --upstream URL --port N

  --upstream URL  origin of one replica on loopback, such as http://127.0.0.1:8000
  --port N        port to listen on, on 127.0.0.1
`;

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}

let upstream: URL;
let port: number;
try {
  const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string' } }, strict: true });
  if (values.upstream === undefined) throw new Error('--upstream: missing; expected the origin of a replica on loopback, such as http://127.0.0.1:8000');
  upstream = parseLoopbackUrl(values.upstream, '--upstream');
  if (upstream.pathname !== '/' || upstream.search !== '' || upstream.username !== '' || upstream.password !== '') {
    throw new Error(`--upstream: ${values.upstream} has a path, query or credentials; expected an origin such as http://127.0.0.1:8000`);
  }
  if (values.port === undefined) throw new Error('--port: missing; expected an integer from 1 to 65535');
  port = parseNumberFlag(values.port, '--port', 0, { min: 1, max: 65_535, integer: true });
} catch (error) {
  process.stderr.write(`reference proxy: ${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}

// The same connection settings as the gateway's pool to a replica: no pipelining, keep-alive
// below the replica's 5 s.
const pool = new Pool(upstream.origin, { connections: 4097, pipelining: 1, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 4_000 });
const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
  try {
    done(null, { raw: body as Buffer, json: JSON.parse((body as Buffer).toString('utf8')) as unknown });
  } catch (error) {
    done(Object.assign(new Error(`the request body is not valid JSON: ${(error as Error).message}`), { statusCode: 400 }), undefined);
  }
});

// Every error the proxy itself sends has the OpenAI shape, like the gateway's.
app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
  reply.code(error.statusCode ?? 500).send({ error: { message: error.message } });
});

interface ParsedBody {
  raw: Buffer;
  json: unknown;
}

/** Buffers one upstream response and sends it to the client. */
class Forward implements Dispatcher.DispatchHandler {
  readonly #reply: FastifyReply;
  #status = 502;
  #contentType = 'application/json';
  #chunks: Buffer[] = [];

  constructor(reply: FastifyReply) {
    this.#reply = reply;
  }

  onRequestStart(): void {
    // Nothing to keep: the reference proxy never cancels a call.
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.#status = statusCode;
    const type = headers['content-type'];
    if (typeof type === 'string') this.#contentType = type;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.#reply.code(this.#status).header('content-type', this.#contentType).send(Buffer.concat(this.#chunks));
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    process.stderr.write(`reference proxy: upstream call failed: ${error.message}\n`);
    if (!this.#reply.sent) this.#reply.code(502).send({ error: { message: `upstream failed: ${error.message}` } });
  }
}

app.post('/v1/chat/completions', (request, reply): void => {
  const body = request.body as ParsedBody;
  const model = (body.json as { model?: unknown } | null)?.model;
  if (typeof model !== 'string') {
    reply.code(400).send({ error: { message: `model must be a string, got ${JSON.stringify(model)}` } });
    return;
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const requestId = request.headers['x-request-id'];
  if (typeof requestId === 'string') {
    headers['x-request-id'] = requestId;
    reply.header('x-request-id', requestId);
  }
  pool.dispatch({ method: 'POST', path: '/v1/chat/completions', headers, body: body.raw }, new Forward(reply));
});

app.get('/healthz', (_request, reply): void => {
  reply.send('ok');
});

process.once('SIGTERM', () => {
  void app.close().then(() => pool.close()).then(() => process.exit(0));
});

try {
  await app.listen({ host: '127.0.0.1', port });
} catch (error) {
  process.stderr.write(`reference proxy: cannot listen on 127.0.0.1:${port}: ${(error as Error).message}\n`);
  await pool.close();
  process.exit(1);
}
process.stdout.write(`reference proxy: listening on http://127.0.0.1:${port}, forwarding to ${upstream.origin}\n`);
