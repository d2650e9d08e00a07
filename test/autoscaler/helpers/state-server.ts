// A minimal /admin/state server for the collector and controller tests: it serves a
// snapshot the test sets, or fails in a chosen way. End-to-end tests use real gateways.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { GatewayState, ModelSnapshot } from '../../../shared/src/admin-state.ts';

export type StateMode = 'ok' | 'status500' | 'hang' | 'garbage' | 'invalid';

export class StateServer {
  state: GatewayState;
  mode: StateMode = 'ok';
  requests = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(name: string) {
    this.state = { gateway: name, time: new Date(0).toISOString(), models: [] };
    this.#server = createServer((req, res) => {
      this.requests += 1;
      if (req.url !== '/admin/state') {
        res.writeHead(404).end();
        return;
      }
      switch (this.mode) {
        case 'hang':
          return;
        case 'status500':
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}');
          return;
        case 'garbage':
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"gateway": ');
          return;
        case 'invalid':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ gateway: 'x', time: 'now', models: [{ name: 'm', queued: { critical: -1 } }] }));
          return;
        case 'ok':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...this.state, time: new Date().toISOString() }));
      }
    });
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(name = 'gw'): Promise<StateServer> {
    const server = new StateServer(name);
    await new Promise<void>((resolve) => server.#server.listen(0, '127.0.0.1', resolve));
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Sets one model's counters; replicas are `ready` ready replicas and `starting` probing ones. */
  setModel(name: string, counts: { queued?: number; held?: number; inFlight?: number; ready?: number; starting?: number }): void {
    const snapshot: ModelSnapshot = {
      name,
      protocol: 'openai',
      queued: { critical: 0, standard: counts.queued ?? 0, sheddable: 0 },
      held: counts.held ?? 0,
      inFlight: counts.inFlight ?? 0,
      oldestQueuedMs: 0,
      arrivalsPerSecond: 0,
      completionsPerSecond: 0,
      replicas: [
        ...Array.from({ length: counts.ready ?? 0 }, (_, i) => ({ id: `10.0.0.${i + 1}:8000`, state: 'ready' as const, inFlight: 0, limit: 32 })),
        ...Array.from({ length: counts.starting ?? 0 }, (_, i) => ({ id: `10.0.1.${i + 1}:8000`, state: 'probing' as const, inFlight: 0, limit: 32 })),
      ],
    };
    this.state = { ...this.state, models: [...this.state.models.filter((m) => m.name !== name), snapshot] };
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
