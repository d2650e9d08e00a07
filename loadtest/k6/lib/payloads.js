// Request bodies for the OpenAI-compatible and KServe V2 routes. Plain ES module without
// k6 imports, so Node tests can check the bodies.

// Common three-letter English words. Tokenizers of current LLMs encode each of them,
// with its leading space, as one token, and the words are 4 characters long with the
// space, so both token counters and the usual "4 characters per token" estimate see
// about one token per word.
const PROMPT_WORDS = Object.freeze([
  'the', 'and', 'for', 'are', 'but', 'not', 'you', 'all', 'any', 'can', 'her', 'was',
  'one', 'our', 'out', 'day', 'get', 'has', 'him', 'his', 'how', 'man', 'new', 'now',
  'old', 'see', 'two', 'way', 'who', 'boy', 'did', 'its', 'let', 'put', 'say', 'she',
]);

const V2_DATATYPES = Object.freeze([
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64',
  'FP16', 'FP32', 'FP64', 'BYTES',
]);

/**
 * One input tensor as listed by V2 model metadata. The first dimension is the batch
 * dimension; -1 marks a variable dimension.
 * @typedef {object} V2InputSpec
 * @property {string} name
 * @property {string} datatype
 * @property {number[]} shape
 */

/**
 * An input tensor of a V2 infer request, with JSON data in row-major order.
 * @typedef {object} V2InputTensor
 * @property {string} name
 * @property {string} datatype
 * @property {number[]} shape
 * @property {Array<number | boolean | string>} data
 */

/**
 * @typedef {object} ChatBodyOptions
 * @property {string} model
 * @property {number} promptTokens Approximate prompt length in tokens, at least 1.
 * @property {number} maxTokens
 * @property {boolean} stream
 * @property {number} [seed] Varies the prompt text so equal lengths give different prompts.
 */

/**
 * Builds a prompt of `tokens` words, starting at word `seed` of the word list.
 * @param {number} tokens
 * @param {number} [seed]
 * @returns {string}
 */
export function buildPrompt(tokens, seed = 0) {
  if (!Number.isInteger(tokens) || tokens < 1) {
    throw new RangeError(`prompt length must be an integer >= 1 token, got ${tokens}`);
  }

  const words = new Array(tokens);
  const offset = Math.abs(Math.trunc(seed)) % PROMPT_WORDS.length;
  for (let index = 0; index < tokens; index++) {
    words[index] = PROMPT_WORDS[(offset + index) % PROMPT_WORDS.length];
  }
  return words.join(' ');
}

/**
 * Builds a POST /v1/chat/completions body with one user message.
 * @param {ChatBodyOptions} options
 * @returns {{model: string, messages: {role: string, content: string}[], max_tokens: number, stream: boolean}}
 */
export function chatBody(options) {
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 1) {
    throw new RangeError(`max_tokens must be an integer >= 1, got ${options.maxTokens}`);
  }
  return {
    model: options.model,
    messages: [{ role: 'user', content: buildPrompt(options.promptTokens, options.seed) }],
    max_tokens: options.maxTokens,
    stream: options.stream,
  };
}

/**
 * Builds a POST /v1/embeddings body with `count` short inputs.
 * @param {string} model
 * @param {number} count
 * @param {number} [seed]
 * @returns {{model: string, input: string[], encoding_format: string}}
 */
export function embeddingsBody(model, count, seed = 0) {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`embeddings input count must be an integer >= 1, got ${count}`);
  }

  const input = [];
  for (let index = 0; index < count; index++) {
    input.push(buildPrompt(8, seed + index));
  }
  return { model, input, encoding_format: 'float' };
}

/**
 * Parses V2 input specs from JSON text, such as the V2_INPUTS variable or the `inputs`
 * field of a model metadata response, and validates each spec.
 * @param {unknown} value Parsed JSON.
 * @param {string} source Where the value came from, for error messages.
 * @returns {V2InputSpec[]}
 */
export function parseV2InputSpecs(value, source) {
  if (!Array.isArray(value) || value.length === 0) {
    throw new Error(`${source}: expected a non-empty array of {name, datatype, shape}, got ${JSON.stringify(value)}`);
  }

  return value.map((item, index) => {
    const where = `${source}[${index}]`;
    if (typeof item !== 'object' || item === null) {
      throw new Error(`${where}: expected an object {name, datatype, shape}, got ${JSON.stringify(item)}`);
    }
    const { name, datatype, shape } = /** @type {Record<string, unknown>} */ (item);
    if (typeof name !== 'string' || name === '') {
      throw new Error(`${where}.name: expected a non-empty string, got ${JSON.stringify(name)}`);
    }
    if (typeof datatype !== 'string' || !V2_DATATYPES.includes(datatype)) {
      throw new Error(`${where}.datatype: expected one of ${V2_DATATYPES.join(', ')}, got ${JSON.stringify(datatype)}`);
    }
    if (!Array.isArray(shape) || shape.length === 0 || !shape.every((dim) => Number.isInteger(dim) && dim >= -1)) {
      throw new Error(`${where}.shape: expected a non-empty array of integers >= -1, got ${JSON.stringify(shape)}`);
    }
    return { name, datatype, shape: /** @type {number[]} */ (shape) };
  });
}

/**
 * Builds a POST /v2/models/{model}/infer body with `rows` rows in dimension 0 of every
 * input. Other variable dimensions (-1) get size 1. Values are deterministic in `seed`
 * so equal seeds give equal requests.
 * @param {readonly V2InputSpec[]} specs
 * @param {number} rows
 * @param {string} id Request id that the V2 protocol returns in the response.
 * @param {number} [seed]
 * @returns {{id: string, inputs: V2InputTensor[]}}
 */
export function v2InferBody(specs, rows, id, seed = 0) {
  if (!Number.isInteger(rows) || rows < 1) {
    throw new RangeError(`V2 rows per request must be an integer >= 1, got ${rows}`);
  }

  const inputs = specs.map((spec) => {
    const shape = spec.shape.map((dim, index) => {
      if (index === 0) {
        return rows;
      }
      return dim === -1 ? 1 : dim;
    });
    const size = elementCount(shape);
    /** @type {Array<number | boolean | string>} */
    const data = new Array(size);
    for (let index = 0; index < size; index++) {
      data[index] = tensorValue(spec.datatype, seed + index);
    }
    return { name: spec.name, datatype: spec.datatype, shape, data };
  });
  return { id, inputs };
}

/**
 * Returns the number of elements of a tensor with this shape.
 * @param {readonly number[]} shape
 * @returns {number}
 */
export function elementCount(shape) {
  let count = 1;
  for (const dim of shape) {
    count *= dim;
  }
  return count;
}

/**
 * @param {string} datatype
 * @param {number} index
 * @returns {number | boolean | string}
 */
function tensorValue(datatype, index) {
  switch (datatype) {
    case 'BOOL':
      return index % 2 === 0;
    case 'BYTES':
      return PROMPT_WORDS[index % PROMPT_WORDS.length] ?? 'the';
    case 'FP16':
    case 'FP32':
    case 'FP64':
      // Multiples of 1/8 are exact in every float width, so replies can be compared exactly.
      return (index % 64) / 8;
    case 'INT8':
    case 'UINT8':
      return index % 100;
    default:
      return index % 1000;
  }
}
