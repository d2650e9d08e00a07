// Checks a gateway admin base URL, as given with --gateway or in gateways.static. The
// collector appends admin/state to it, so only an origin makes sense: a path would
// be requested as <path>/admin/state, and credentials would be printed in the start-up log.

/** Problem found in a gateway URL, for a message that names the flag or key. */
export interface GatewayUrlProblem {
  /** The problem, such as "has the path /admin". */
  problem: string;
  /** The URL with its credentials replaced by "***", safe to print. */
  redacted: string;
  /** The origin to pass instead, when the URL parses with http or https. */
  origin: string | undefined;
}

const EXAMPLE = 'http://127.0.0.1:9090';

/** Returns the problem of a gateway URL, or undefined for an http or https origin (a trailing "/" is allowed). */
export function checkGatewayUrl(text: string): GatewayUrlProblem | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: 'is not a valid URL', redacted: text, origin: undefined };
  }
  const hasCredentials = url.username !== '' || url.password !== '';
  const redacted = hasCredentials ? redact(url) : text;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { problem: `has the protocol ${url.protocol.slice(0, -1)}, not http or https`, redacted, origin: undefined };
  }
  const origin = url.origin;
  if (hasCredentials) return { problem: 'contains credentials (the gateway admin port takes none, and the start-up log would show them)', redacted, origin };
  if (url.pathname !== '/') return { problem: `has the path ${url.pathname} (the autoscaler adds /admin/state itself)`, redacted, origin };
  // A bare "?" or "#" leaves search and hash empty, so the serialized URL is checked too.
  if (url.search !== '' || url.href.includes('?')) return { problem: 'has a query', redacted, origin };
  if (url.hash !== '' || url.href.includes('#')) return { problem: 'has a fragment', redacted, origin };
  return undefined;
}

/** Formats a problem as "<name>: expected ..., got <value>, which <problem>; pass <origin> instead". */
export function describeGatewayUrlProblem(name: string, found: GatewayUrlProblem): string {
  const advice = found.origin !== undefined ? `pass the origin ${found.origin} instead` : `pass an origin such as ${EXAMPLE}`;
  return `${name}: expected a gateway admin origin (scheme, host and port), got ${JSON.stringify(found.redacted)}, which ${found.problem}; ${advice}`;
}

/** Returns the URL with its user and password replaced by "***", so a rejected value can be shown. */
function redact(url: URL): string {
  // Built from the parsed URL, not the text, so no spelling of the credentials can survive.
  const copy = new URL(url.href);
  copy.username = '***';
  copy.password = '';
  return copy.href;
}
