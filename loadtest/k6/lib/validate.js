// Response shape checks for the OpenAI-compatible and KServe V2 routes. Plain ES module
// without k6 imports: the k6 scripts call these inside check(), and Node tests run them
// on real and broken bodies. Each predicate checks one aspect, so a failed k6 check
// names the aspect that broke.

/**
 * Events of a Server-Sent Events body as OpenAI streaming endpoints send them.
 * @typedef {object} SseStream
 * @property {Array<Record<string, unknown>>} chunks JSON payloads of `data:` lines before `[DONE]`.
 * @property {boolean} done Whether a `data: [DONE]` event ended the stream.
 * @property {boolean} dataAfterDone Whether any event followed `[DONE]`.
 * @property {Array<Record<string, unknown>>} errors Payloads that carry an `error` object.
 * @property {string[]} malformed `data:` payloads that are not JSON objects.
 */

/**
 * Parses JSON text and returns undefined instead of throwing on invalid input.
 * @param {string | null | ArrayBuffer | undefined} text
 * @returns {unknown}
 */
export function parseJson(text) {
  if (typeof text !== 'string') {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
export function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Returns the value of a response header, matching the name without regard to case.
 * @param {Readonly<Record<string, string>>} headers
 * @param {string} name
 * @returns {string | undefined}
 */
export function headerValue(headers, name) {
  const lowerName = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === lowerName) {
      return value;
    }
  }
  return undefined;
}

/**
 * Checks a non-streaming chat completion: object type, id, model and one assistant
 * message with string content and a finish reason.
 * @param {unknown} body
 * @param {string} model
 * @returns {boolean}
 */
export function isChatCompletion(body, model) {
  if (!isObject(body) || body.object !== 'chat.completion' || typeof body.id !== 'string' || body.model !== model) {
    return false;
  }
  const choice = firstChoice(body);
  if (choice === undefined || !isObject(choice.message)) {
    return false;
  }
  return choice.message.role === 'assistant' && typeof choice.message.content === 'string' && typeof choice.finish_reason === 'string';
}

/**
 * Checks `usage`: a positive prompt token count and a completion token count between 1
 * and `maxTokens`.
 * @param {unknown} body
 * @param {number} maxTokens
 * @returns {boolean}
 */
export function hasUsageWithin(body, maxTokens) {
  if (!isObject(body) || !isObject(body.usage)) {
    return false;
  }
  const { prompt_tokens: prompt, completion_tokens: completion } = body.usage;
  return isCount(prompt) && prompt > 0 && isCount(completion) && completion >= 1 && completion <= maxTokens;
}

/**
 * Splits a text/event-stream body into events. Accepts LF and CRLF line ends and joins
 * multi-line `data:` fields with newlines, as the SSE specification does.
 * @param {string} text
 * @returns {SseStream}
 */
export function parseSse(text) {
  /** @type {SseStream} */
  const stream = { chunks: [], done: false, dataAfterDone: false, errors: [], malformed: [] };
  const events = text.split(/\r?\n\r?\n/);
  for (const event of events) {
    /** @type {string[]} */
    const dataLines = [];
    for (const line of event.split(/\r?\n/)) {
      if (line.startsWith('data:')) {
        dataLines.push(line.slice(5).replace(/^ /, ''));
      }
    }
    if (dataLines.length === 0) {
      continue;
    }

    const data = dataLines.join('\n');
    if (stream.done) {
      stream.dataAfterDone = true;
      continue;
    }
    if (data === '[DONE]') {
      stream.done = true;
      continue;
    }

    const payload = parseJson(data);
    if (!isObject(payload)) {
      stream.malformed.push(data);
    } else if (isObject(payload.error)) {
      stream.errors.push(payload);
    } else {
      stream.chunks.push(payload);
    }
  }
  return stream;
}

/**
 * Checks a parsed chat stream: at least one chunk, every chunk a `chat.completion.chunk`
 * of `model` with one id for the whole stream, no error event, no malformed event, and
 * `[DONE]` as the last event.
 * @param {SseStream} stream
 * @param {string} model
 * @returns {boolean}
 */
export function isCompleteChatStream(stream, model) {
  if (!stream.done || stream.dataAfterDone || stream.errors.length > 0 || stream.malformed.length > 0 || stream.chunks.length === 0) {
    return false;
  }
  const id = stream.chunks[0]?.id;
  return typeof id === 'string' && stream.chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && chunk.id === id && chunk.model === model);
}

/**
 * Returns the generated text of a chat stream: the concatenated `delta.content` of the
 * first choice.
 * @param {SseStream} stream
 * @returns {string}
 */
export function streamedText(stream) {
  let text = '';
  for (const chunk of stream.chunks) {
    const choice = firstChoice(chunk);
    if (choice !== undefined && isObject(choice.delta) && typeof choice.delta.content === 'string') {
      text += choice.delta.content;
    }
  }
  return text;
}

/**
 * Checks an embeddings list: one `embedding` object per input, indexed 0..count-1 in
 * order, each a non-empty array of numbers.
 * @param {unknown} body
 * @param {string} model
 * @param {number} count Inputs sent.
 * @returns {boolean}
 */
export function isEmbeddingList(body, model, count) {
  if (!isObject(body) || body.object !== 'list' || body.model !== model || !Array.isArray(body.data) || body.data.length !== count) {
    return false;
  }
  return body.data.every(
    (item, index) =>
      isObject(item) &&
      item.object === 'embedding' &&
      item.index === index &&
      Array.isArray(item.embedding) &&
      item.embedding.length > 0 &&
      item.embedding.every((value) => typeof value === 'number'),
  );
}

/**
 * Checks a V2 infer response: model name, non-empty outputs, and for each output a name,
 * datatype, shape and as many data elements as the shape holds.
 * @param {unknown} body
 * @param {string} model
 * @returns {boolean}
 */
export function isV2InferResponse(body, model) {
  if (!isObject(body) || body.model_name !== model || !Array.isArray(body.outputs) || body.outputs.length === 0) {
    return false;
  }
  return body.outputs.every((output) => {
    if (!isObject(output) || typeof output.name !== 'string' || typeof output.datatype !== 'string') {
      return false;
    }
    const { shape, data } = output;
    if (!Array.isArray(shape) || !shape.every((dim) => isCount(dim)) || !Array.isArray(data)) {
      return false;
    }
    const expected = shape.reduce((product, dim) => product * dim, 1);
    return data.flat(Infinity).length === expected;
  });
}

/**
 * Checks that every output has `rows` rows in dimension 0. When the gateway merges
 * requests into one batch, this proves the reply was split back at the right rows.
 * @param {unknown} body
 * @param {number} rows
 * @returns {boolean}
 */
export function hasV2Rows(body, rows) {
  if (!isObject(body) || !Array.isArray(body.outputs) || body.outputs.length === 0) {
    return false;
  }
  return body.outputs.every((output) => isObject(output) && Array.isArray(output.shape) && output.shape[0] === rows);
}

/**
 * Checks the OpenAI error shape `{"error": {"message", "type", "code"}}` that the gateway
 * returns on the OpenAI-compatible routes.
 * @param {unknown} body
 * @returns {boolean}
 */
export function isOpenAIError(body) {
  if (!isObject(body) || !isObject(body.error)) {
    return false;
  }
  const { message, type, code } = body.error;
  return typeof message === 'string' && message !== '' && typeof type === 'string' && (typeof code === 'string' || code === null);
}

/**
 * Checks a Retry-After header in its delay-seconds form (a non-negative integer), which
 * the gateway sends on every 429 and 503.
 * @param {string | undefined} value
 * @returns {boolean}
 */
export function isRetryAfterSeconds(value) {
  return value !== undefined && /^\d+$/.test(value.trim());
}

/**
 * @param {Record<string, unknown>} body
 * @returns {Record<string, unknown> | undefined}
 */
function firstChoice(body) {
  if (!Array.isArray(body.choices) || body.choices.length === 0) {
    return undefined;
  }
  const choice = body.choices[0];
  return isObject(choice) ? choice : undefined;
}

/**
 * @param {unknown} value
 * @returns {value is number}
 */
function isCount(value) {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}
