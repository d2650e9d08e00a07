// Validates a gateway's /admin/state JSON before any number of it reaches a decision.
// The TypeScript types live in shared/src/admin-state.ts; this schema checks the fields
// the autoscaler reads and lets the gateway add others.
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { PRIORITIES, REPLICA_STATES, type GatewayState } from '../../../shared/src/admin-state.ts';
import { pointerToPath } from '../config/load.ts';

const Count = Type.Number({ minimum: 0 });

const ReplicaSchema = Type.Object({
  id: Type.String(),
  state: Type.Union(REPLICA_STATES.map((s) => Type.Literal(s))),
  inFlight: Count,
  limit: Count,
});

const ModelSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  queued: Type.Object(Object.fromEntries(PRIORITIES.map((p) => [p, Count]))),
  held: Count,
  inFlight: Count,
  replicas: Type.Array(ReplicaSchema),
});

const GatewayStateSchema = Type.Object({
  gateway: Type.String(),
  time: Type.String(),
  models: Type.Array(ModelSchema),
});

/** Returns the body as a GatewayState, or throws an Error naming the first invalid field. */
export function parseGatewayState(body: unknown): GatewayState {
  if (Value.Check(GatewayStateSchema, body)) return body as GatewayState;
  const first = Value.Errors(GatewayStateSchema, body).First();
  const path = first ? pointerToPath(first.path) || '(root)' : '(root)';
  const value = first ? JSON.stringify(first.value) ?? 'undefined' : '';
  throw new Error(`invalid /admin/state body: ${path}: ${first?.message ?? 'does not match'}, got ${value.slice(0, 100)}`);
}
