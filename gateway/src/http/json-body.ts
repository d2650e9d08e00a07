// Parsing of JSON request bodies. fastify's own JSON parser rejects prototype-poisoning keys,
// but the gateway keeps the raw bytes to forward them byte for byte, so it installs its own
// parser and makes the same check here. A replica behind the gateway (vLLM's FastAPI, the
// simulator's fastify) would otherwise answer such a body with its own, different error.
import { GatewayError } from './errors.ts';

/**
 * Cheap test of the body text for anything that can spell a poisoning key. JSON escapes
 * (\u0070 for "p") can hide the words, so any escape sends the body to the full check too.
 */
const SUSPECT_TEXT = /proto|constructor|\\u/;

/**
 * Parses text as JSON and rejects keys that alter object prototypes when the object is
 * merged or copied: `__proto__` anywhere, and `constructor` holding an object with a
 * `prototype` key. Throws GatewayError 400 invalid_json or forbidden_key.
 */
export function parseJsonBody(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new GatewayError(400, 'invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (SUSPECT_TEXT.test(text)) {
    const found = findPoisoningKey(value);
    if (found !== undefined) {
      throw new GatewayError(400, 'forbidden_key', `the request body has the key ${found.key} at ${found.path}, which could alter object prototypes; remove it`, { param: found.path });
    }
  }
  return value;
}

/** Walks value without recursion, so a deeply nested body cannot overflow the stack. */
function findPoisoningKey(value: unknown): { key: string; path: string } | undefined {
  const pending: { node: unknown; path: string }[] = [{ node: value, path: '' }];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const { node, path } = item;
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (const [index, inner] of node.entries()) if (inner !== null && typeof inner === 'object') pending.push({ node: inner, path: `${path}[${index}]` });
      continue;
    }
    for (const [key, inner] of Object.entries(node)) {
      const where = path === '' ? key : `${path}.${key}`;
      if (key === '__proto__') return { key: '"__proto__"', path: where };
      if (key === 'constructor' && inner !== null && typeof inner === 'object' && Object.hasOwn(inner, 'prototype')) {
        return { key: '"constructor.prototype"', path: `${where}.prototype` };
      }
      if (inner !== null && typeof inner === 'object') pending.push({ node: inner, path: where });
    }
  }
  return undefined;
}
