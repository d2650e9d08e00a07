// Server-sent events written by the gateway itself, as opposed to chunks passed through.
import type { GatewayError } from '../http/errors.ts';

/**
 * Formats the event that ends a stream which failed midway. Its data has the OpenAI error shape,
 * so clients that parse `data:` lines see the same fields as a non-streamed error.
 */
export function sseErrorEvent(err: GatewayError): string {
  return `event: error\ndata: ${JSON.stringify(err.toOpenAI())}\n\n`;
}
