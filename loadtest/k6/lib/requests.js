// k6 calls to the gateway's OpenAI-compatible and KServe V2 routes, each with its tags,
// headers and checks. Scripts compose load from these functions.
//
// Every request sends x-request-id (the gateway returns it, which a check verifies),
// x-priority and x-request-timeout-ms. The k6 timeout is longer than the gateway
// deadline, so a request that runs out of time ends with the gateway's 504 and its error
// body instead of a client-side timeout that the gateway never records.

import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';

import { chatBody, embeddingsBody, parseV2InputSpecs, v2InferBody } from './payloads.js';
import {
  hasUsageWithin,
  hasV2Rows,
  headerValue,
  isChatCompletion,
  isCompleteChatStream,
  isEmbeddingList,
  isObject,
  isOpenAIError,
  isRetryAfterSeconds,
  isV2InferResponse,
  parseJson,
  parseSse,
  streamedText,
} from './validate.js';

/** @typedef {import('./config.js').Target} Target */
/** @typedef {import('./thresholds.js').RequestTags} RequestTags */
/** @typedef {import('./payloads.js').V2InputSpec} V2InputSpec */
/** @typedef {import('k6/http').Response} Response */
/** @typedef {'critical' | 'standard' | 'sheddable'} Priority */

/** Time in ms that k6 waits beyond the gateway deadline before it gives up on a response. */
const CLIENT_TIMEOUT_SLACK_MS = 5000;

/**
 * @typedef {object} CallOptions
 * @property {Priority} [priority] Overrides the target's x-priority.
 * @property {boolean} [allowShed] Counts 429 as an expected response (for sheddable traffic) and checks its shape.
 */

/**
 * @typedef {object} ChatOptions
 * @property {number} promptTokens
 * @property {number} maxTokens
 * @property {Priority} [priority]
 * @property {boolean} [allowShed]
 */

/**
 * Sends a non-streaming chat completion and checks status, body shape, token usage and
 * the returned request id.
 * @param {Target} target
 * @param {ChatOptions} options
 * @returns {Response}
 */
export function sendChat(target, options) {
  const { response, tags, requestId, shed } = postChat(target, options, 'chat');
  if (shed) {
    return response;
  }

  const parsed = parseJson(response.body);
  check(
    response,
    {
      'chat status is 200': (r) => r.status === 200,
      'chat body is a chat.completion': () => isChatCompletion(parsed, target.chatModel),
      'chat usage is within max_tokens': () => hasUsageWithin(parsed, options.maxTokens),
      'chat x-request-id is returned': (r) => headerValue(r.headers, 'x-request-id') === requestId,
    },
    tags,
  );
  return response;
}

/**
 * Sends a streaming chat completion (`stream: true`) and checks the SSE headers and
 * events.
 *
 * NOTE: k6's HTTP client returns only after the whole body has arrived, so this request's
 * http_req_duration is the time to the last token. http_req_waiting is the time to the
 * response headers, which the gateway may send before the first token, so it is not the
 * time to first token either. Read time to first token from the gateway's
 * infergate_time_to_first_byte_seconds histogram.
 * @param {Target} target
 * @param {ChatOptions} options
 * @returns {Response}
 */
export function sendStreamingChat(target, options) {
  const { response, tags, requestId, shed } = postChat(target, options, 'chat_stream');
  if (shed) {
    return response;
  }

  const stream = parseSse(typeof response.body === 'string' ? response.body : '');
  check(
    response,
    {
      'stream status is 200': (r) => r.status === 200,
      'stream content-type is text/event-stream': (r) => (headerValue(r.headers, 'content-type') ?? '').startsWith('text/event-stream'),
      'stream cache-control is no-cache': (r) => (headerValue(r.headers, 'cache-control') ?? '').includes('no-cache'),
      'stream chunks are complete and end with [DONE]': () => isCompleteChatStream(stream, target.chatModel),
      'stream has no error event': () => stream.errors.length === 0,
      'stream text is not empty': () => streamedText(stream) !== '',
      'stream x-request-id is returned': (r) => headerValue(r.headers, 'x-request-id') === requestId,
    },
    tags,
  );
  return response;
}

/**
 * Sends an embeddings request with `count` inputs and checks the list shape.
 * @param {Target} target
 * @param {number} count
 * @param {CallOptions} [options]
 * @returns {Response}
 */
export function sendEmbeddings(target, count, options = {}) {
  const { tags, requestId } = startRequest(target, target.embeddingsModel, 'openai', 'embeddings', options.priority);
  const body = embeddingsBody(target.embeddingsModel, count, exec.vu.iterationInScenario);
  const { response, shed } = postJson(target, `${target.baseUrl}/v1/embeddings`, body, tags, requestId, options.allowShed === true);
  if (shed) {
    return response;
  }

  const parsed = parseJson(response.body);
  check(
    response,
    {
      'embeddings status is 200': (r) => r.status === 200,
      'embeddings body is a list with one embedding per input': () => isEmbeddingList(parsed, target.embeddingsModel, count),
      'embeddings x-request-id is returned': (r) => headerValue(r.headers, 'x-request-id') === requestId,
    },
    tags,
  );
  return response;
}

/**
 * Sends a V2 infer request with `rows` rows in dimension 0 of every input and checks the
 * outputs. The row check catches a batch split back at the wrong rows.
 * @param {Target} target
 * @param {readonly V2InputSpec[]} specs
 * @param {number} rows
 * @param {CallOptions} [options]
 * @returns {Response}
 */
export function sendV2Infer(target, specs, rows, options = {}) {
  const { tags, requestId } = startRequest(target, target.v2Model, 'v2', 'infer', options.priority);
  const body = v2InferBody(specs, rows, requestId, exec.vu.iterationInScenario);
  const url = `${target.baseUrl}/v2/models/${encodeURIComponent(target.v2Model)}/infer`;
  const { response, shed } = postJson(target, url, body, tags, requestId, options.allowShed === true);
  if (shed) {
    return response;
  }

  const parsed = parseJson(response.body);
  check(
    response,
    {
      'infer status is 200': (r) => r.status === 200,
      'infer body has V2 outputs': () => isV2InferResponse(parsed, target.v2Model),
      'infer outputs have the rows sent': () => hasV2Rows(parsed, rows),
      'infer id is returned': () => isObject(parsed) && parsed.id === requestId,
    },
    tags,
  );
  return response;
}

/**
 * Lists models and checks that the chat and embeddings models are served.
 * @param {Target} target
 * @returns {Response}
 */
export function listModels(target) {
  const tags = requestTags('all', 'openai', 'models', target.priority);
  const response = http.get(`${target.baseUrl}/v1/models`, { tags, headers: { 'x-request-id': nextRequestId('models') } });
  const parsed = parseJson(response.body);
  /** @type {unknown[]} */
  const ids = [];
  if (isObject(parsed) && Array.isArray(parsed.data)) {
    for (const item of parsed.data) {
      ids.push(isObject(item) ? item.id : undefined);
    }
  }
  check(
    response,
    {
      'models status is 200': (r) => r.status === 200,
      'models list has the chat model': () => ids.includes(target.chatModel),
      'models list has the embeddings model': () => ids.includes(target.embeddingsModel),
    },
    tags,
  );
  return response;
}

/**
 * Checks GET /v2/models/{model}/ready.
 * @param {Target} target
 * @returns {Response}
 */
export function checkV2Ready(target) {
  const tags = requestTags(target.v2Model, 'v2', 'metadata', target.priority);
  const response = http.get(`${target.baseUrl}/v2/models/${encodeURIComponent(target.v2Model)}/ready`, {
    tags,
    headers: { 'x-request-id': nextRequestId('ready') },
  });
  check(response, { 'V2 model ready status is 200': (r) => r.status === 200 }, tags);
  return response;
}

/**
 * Returns the input tensors to send to the V2 model: V2_INPUTS when set, else the
 * `inputs` of GET /v2/models/{model}. Call it from setup(); it throws when neither gives
 * a usable spec, which stops the run before any load.
 * @param {Target} target
 * @param {string} inputsOverride Value of V2_INPUTS, JSON text or empty.
 * @returns {V2InputSpec[]}
 */
export function resolveV2InputSpecs(target, inputsOverride) {
  if (inputsOverride !== '') {
    const parsed = parseJson(inputsOverride);
    if (parsed === undefined) {
      throw new Error(`invalid environment variable V2_INPUTS=${JSON.stringify(inputsOverride)}: expected JSON such as [{"name":"INPUT0","datatype":"FP32","shape":[-1,16]}]`);
    }
    return parseV2InputSpecs(parsed, 'V2_INPUTS');
  }

  const url = `${target.baseUrl}/v2/models/${encodeURIComponent(target.v2Model)}`;
  const tags = requestTags(target.v2Model, 'v2', 'metadata', target.priority);
  // setup() runs outside any scenario, where k6/execution has no scenario or VU to name.
  const response = http.get(url, { tags, headers: { 'x-request-id': 'k6-setup-v2-metadata' } });
  if (response.status !== 200) {
    throw new Error(
      `GET ${url} returned ${response.status} ${response.error}: check BASE_URL and V2_MODEL, or set V2_INPUTS to the model's input tensors`,
    );
  }
  const metadata = parseJson(response.body);
  return parseV2InputSpecs(isObject(metadata) ? metadata.inputs : undefined, `GET ${url} inputs`);
}

/**
 * Builds the tags and the request id of one call. The operation tag doubles as the
 * request id's suffix.
 * @param {Target} target
 * @param {string} model
 * @param {'openai' | 'v2'} protocol
 * @param {'chat' | 'chat_stream' | 'embeddings' | 'infer'} operation
 * @param {Priority | undefined} priority Overrides the target's x-priority when set.
 * @returns {{tags: {[name: string]: string}, requestId: string}}
 */
function startRequest(target, model, protocol, operation, priority) {
  return {
    tags: requestTags(model, protocol, operation, priority ?? target.priority),
    requestId: nextRequestId(operation),
  };
}

/**
 * Posts a JSON body with the gateway's request headers. With allowShed, a 429 is checked
 * as a shed response and reported through `shed`, so the caller skips its success checks.
 * @param {Target} target
 * @param {string} url
 * @param {unknown} body
 * @param {{[name: string]: string}} tags
 * @param {string} requestId
 * @param {boolean} allowShed
 * @returns {{response: Response, shed: boolean}}
 */
function postJson(target, url, body, tags, requestId, allowShed) {
  const response = http.post(url, JSON.stringify(body), requestParams(target, tags, requestId, allowShed));
  const shed = allowShed && response.status === 429;
  if (shed) {
    checkShed(response, tags);
  }
  return { response, shed };
}

/**
 * Posts a chat completion, streaming when the operation is chat_stream. Both chat calls
 * send the same body apart from `stream`, so only their checks differ.
 * @param {Target} target
 * @param {ChatOptions} options
 * @param {'chat' | 'chat_stream'} operation
 * @returns {{response: Response, tags: {[name: string]: string}, requestId: string, shed: boolean}}
 */
function postChat(target, options, operation) {
  const { tags, requestId } = startRequest(target, target.chatModel, 'openai', operation, options.priority);
  const body = chatBody({
    model: target.chatModel,
    promptTokens: options.promptTokens,
    maxTokens: options.maxTokens,
    stream: operation === 'chat_stream',
    seed: exec.vu.iterationInScenario,
  });
  const { response, shed } = postJson(target, `${target.baseUrl}/v1/chat/completions`, body, tags, requestId, options.allowShed === true);
  return { response, tags, requestId, shed };
}

/**
 * @param {string} model
 * @param {'openai' | 'v2'} protocol
 * @param {import('./thresholds.js').Operation} operation
 * @param {Priority} priority
 * @returns {{model: string, protocol: 'openai' | 'v2', operation: import('./thresholds.js').Operation, priority: Priority}}
 */
function requestTags(model, protocol, operation, priority) {
  return { model, protocol, operation, priority };
}

/**
 * Builds the request parameters: JSON content type, the gateway's request headers, the
 * client timeout and, for sheddable traffic, 429 as an expected status.
 * @param {Target} target
 * @param {{[name: string]: string}} tags
 * @param {string} requestId
 * @param {boolean} allowShed
 * @returns {import('k6/http').Params}
 */
function requestParams(target, tags, requestId, allowShed) {
  /** @type {import('k6/http').Params} */
  const params = {
    headers: {
      'content-type': 'application/json',
      'x-request-id': requestId,
      'x-priority': tags.priority ?? target.priority,
      'x-request-timeout-ms': String(target.requestTimeoutMs),
    },
    tags,
    timeout: target.requestTimeoutMs + CLIENT_TIMEOUT_SLACK_MS,
  };
  if (allowShed) {
    params.responseCallback = http.expectedStatuses({ min: 200, max: 299 }, 429);
  }
  return params;
}

/**
 * Checks a 429 returned to shed work: it must carry Retry-After and an OpenAI error body.
 * @param {Response} response
 * @param {{[name: string]: string}} tags
 */
function checkShed(response, tags) {
  const parsed = parseJson(response.body);
  check(
    response,
    {
      'shed 429 has Retry-After in seconds': (r) => isRetryAfterSeconds(headerValue(r.headers, 'retry-after')),
      'shed 429 has an error body': () => isOpenAIError(parsed) || (isObject(parsed) && typeof parsed.error === 'string'),
    },
    tags,
  );
}

/**
 * Returns an id unique within the test run: scenario, VU and iteration.
 * @param {string} operation
 * @returns {string}
 */
function nextRequestId(operation) {
  return `k6-${exec.scenario.name}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}-${operation}`;
}
