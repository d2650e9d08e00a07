// Request validation at the gateway: OpenAI parameter types and ranges, plain-word messages,
// prototype-poisoning keys and the V2 binary extension are rejected before a replica receives
// the request, while unknown extension fields still pass through untouched.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { chatBody, metricValue, postJson, startReplica, startTestGateway, waitFor, type SpawnedReplica, type TestGateway } from './helpers.ts';

/** Nothing listens on the discard port; the V2 model here never needs a replica. */
const NOWHERE = 'http://127.0.0.1:9';

interface Case {
  route: string;
  body: Record<string, unknown>;
  param: string;
  message: string;
}

describe('request validation', () => {
  let replica: SpawnedReplica;
  let gateway: TestGateway;

  before(async () => {
    replica = await startReplica('openai', 'chat', ['--model', 'embedder']);
    gateway = await startTestGateway([
      { name: 'chat', protocol: 'openai', replicas: { static: [replica.url] } },
      { name: 'embedder', protocol: 'openai', replicas: { static: [replica.url] } },
      { name: 'tabular', protocol: 'v2', replicas: { static: [NOWHERE] }, scaleFromZero: { enabled: false } },
    ]);
    await waitFor(() => gateway.state().models.filter((model) => model.protocol === 'openai').every((model) => model.replicas.some((r) => r.state === 'ready')), 'the OpenAI replica to be ready');
  });

  after(async () => {
    await gateway?.close(0);
    await replica?.stop();
  });

  const chat = (extra: Record<string, unknown>): Record<string, unknown> => chatBody('chat', extra);

  // Each case is refused at the gateway with the parameter, the value and what is allowed in plain words.
  test('invalid OpenAI parameters get 400', async () => {
    const cases: Case[] = [
      { route: '/v1/chat/completions', body: { model: 'chat', messages: [] }, param: 'messages', message: 'invalid value [] for messages: must contain at least 1 item' },
      { route: '/v1/chat/completions', body: chat({ messages: [{ role: 'robot', content: 'hi' }] }), param: 'messages[0].role', message: 'invalid value "robot" for messages[0].role: must be one of system, user, assistant, tool, developer, function' },
      { route: '/v1/chat/completions', body: chat({ messages: [{ role: 'user', content: 5 }] }), param: 'messages[0].content', message: 'invalid value 5 for messages[0].content: must be a string, an array of content parts (objects with a type) or null' },
      { route: '/v1/chat/completions', body: chat({ temperature: 'hot' }), param: 'temperature', message: 'invalid value "hot" for temperature: must be a number from 0 to 2 or null' },
      { route: '/v1/chat/completions', body: chat({ temperature: 2.5 }), param: 'temperature', message: 'invalid value 2.5 for temperature: must be a number from 0 to 2 or null' },
      { route: '/v1/chat/completions', body: chat({ top_p: 'x' }), param: 'top_p', message: 'invalid value "x" for top_p: must be a number from 0 to 1 or null' },
      { route: '/v1/chat/completions', body: chat({ n: '2' }), param: 'n', message: 'invalid value "2" for n: must be a positive integer or null' },
      { route: '/v1/chat/completions', body: chat({ n: 0 }), param: 'n', message: 'invalid value 0 for n: must be a positive integer or null' },
      { route: '/v1/chat/completions', body: chat({ stream: 'yes' }), param: 'stream', message: 'invalid value "yes" for stream: must be a boolean (true or false) or null' },
      { route: '/v1/chat/completions', body: chat({ max_tokens: 1.5 }), param: 'max_tokens', message: 'invalid value 1.5 for max_tokens: must be a positive integer or null' },
      { route: '/v1/chat/completions', body: chat({ max_completion_tokens: 0 }), param: 'max_completion_tokens', message: 'invalid value 0 for max_completion_tokens: must be a positive integer or null' },
      { route: '/v1/chat/completions', body: chat({ stop: 5 }), param: 'stop', message: 'invalid value 5 for stop: must be a string or an array of up to 4 strings or null' },
      { route: '/v1/chat/completions', body: chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), param: 'stop', message: 'invalid value ["a","b","c","d","e"] for stop: must be a string or an array of up to 4 strings or null' },
      { route: '/v1/chat/completions', body: chat({ seed: 'x' }), param: 'seed', message: 'invalid value "x" for seed: must be an integer or null' },
      { route: '/v1/chat/completions', body: chat({ presence_penalty: -3 }), param: 'presence_penalty', message: 'invalid value -3 for presence_penalty: must be a number from -2 to 2 or null' },
      { route: '/v1/chat/completions', body: chat({ frequency_penalty: 'x' }), param: 'frequency_penalty', message: 'invalid value "x" for frequency_penalty: must be a number from -2 to 2 or null' },
      { route: '/v1/chat/completions', body: chat({ logprobs: 1 }), param: 'logprobs', message: 'invalid value 1 for logprobs: must be a boolean (true or false) or null' },
      { route: '/v1/chat/completions', body: chat({ top_logprobs: 21 }), param: 'top_logprobs', message: 'invalid value 21 for top_logprobs: must be an integer from 0 to 20 or null' },
      { route: '/v1/chat/completions', body: chat({ stream_options: 'usage' }), param: 'stream_options', message: 'invalid value "usage" for stream_options: must be an object such as {"include_usage": true} or null' },
      { route: '/v1/chat/completions', body: chat({ user: 7 }), param: 'user', message: 'invalid value 7 for user: must be a string' },
      { route: '/v1/chat/completions', body: chat({ model: '' }), param: 'model', message: 'invalid value "" for model: must not be empty' },
      { route: '/v1/completions', body: { model: 'chat', prompt: [] }, param: 'prompt', message: 'invalid value [] for prompt: must be a string, a non-empty array of strings, a non-empty array of token ids or a non-empty array of non-empty token id arrays' },
      { route: '/v1/completions', body: { model: 'chat', prompt: 'hi', logprobs: 6 }, param: 'logprobs', message: 'invalid value 6 for logprobs: must be an integer from 0 to 5 or null' },
      { route: '/v1/completions', body: { model: 'chat', prompt: 'hi', temperature: -1 }, param: 'temperature', message: 'invalid value -1 for temperature: must be a number from 0 to 2 or null' },
      { route: '/v1/embeddings', body: { model: 'embedder', input: [1, 'a'] }, param: 'input', message: 'invalid value [1,"a"] for input: must be a non-empty string, an array of non-empty strings, an array of token ids or an array of token id arrays' },
      { route: '/v1/embeddings', body: { model: 'embedder', input: 'a', encoding_format: 'int8' }, param: 'encoding_format', message: 'invalid value "int8" for encoding_format: must be one of "float", "base64"' },
      { route: '/v1/embeddings', body: { model: 'embedder', input: 'a', dimensions: 0 }, param: 'dimensions', message: 'invalid value 0 for dimensions: must be at least 1' },
      { route: '/v1/embeddings', body: { model: 'embedder', input: 'a', dimensions: 'big' }, param: 'dimensions', message: 'invalid value "big" for dimensions: must be a positive integer' },
    ];
    await replica.resetStats();
    for (const { route, body, param, message } of cases) {
      const response = await postJson(`${gateway.trafficUrl}${route}`, body);
      assert.equal(response.status, 400, `${route} ${param}: ${response.text}`);
      assert.equal(response.body.error.code, 'invalid_value', `${route} ${param}`);
      assert.equal(response.body.error.param, param, `${route} ${param}`);
      assert.equal(response.body.error.message, message, `${route} ${param}`);
    }
    assert.equal((await replica.stats()).received, 0);
  });

  test('valid and extension fields pass', async () => {
    const chatResponse = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chat({
      messages: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      temperature: 0,
      top_p: 1,
      n: 1,
      stop: ['\n'],
      seed: 42,
      presence_penalty: -2,
      frequency_penalty: 2,
      logprobs: false,
      top_logprobs: 0,
      stream_options: null,
      top_k: 5,
      guided_choice: ['yes', 'no'],
    }));
    assert.equal(chatResponse.status, 200, chatResponse.text);
    const completion = await postJson(`${gateway.trafficUrl}/v1/completions`, { model: 'chat', prompt: 'hi', max_tokens: 2, stop: 'x', repetition_penalty: 1.1 });
    assert.equal(completion.status, 200, completion.text);
    const embeddings = await postJson(`${gateway.trafficUrl}/v1/embeddings`, { model: 'embedder', input: ['a'], encoding_format: 'float', dimensions: 8, truncate_prompt_tokens: 16 });
    assert.equal(embeddings.status, 200, embeddings.text);
  });

  test('prototype-poisoning keys get 400', async () => {
    await replica.resetStats();
    const bodies: [string, string][] = [
      ['{"model":"chat","messages":[{"role":"user","content":"hi"}],"__proto__":{"polluted":true}}', '__proto__'],
      ['{"model":"chat","messages":[{"role":"user","content":"hi","__proto__":{"x":1}}]}', 'messages[0].__proto__'],
      ['{"model":"chat","messages":[{"role":"user","content":"hi"}],"\\u005f_proto__":{"x":1}}', '__proto__'],
      ['{"model":"chat","messages":[{"role":"user","content":"hi"}],"constructor":{"prototype":{"x":1}}}', 'constructor.prototype'],
    ];
    for (const [text, param] of bodies) {
      const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, text);
      assert.equal(response.status, 400, text);
      assert.equal(response.body.error.code, 'forbidden_key', text);
      assert.equal(response.body.error.param, param, text);
      assert.match(response.body.error.message, /could alter object prototypes; remove it$/, text);
    }
    assert.equal((await replica.stats()).received, 0);
    const harmless = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chat({ messages: [{ role: 'user', content: 'the constructor of a proto\u00e9type' }], constructor: 'plain' }));
    assert.equal(harmless.status, 200, harmless.text);
  });

  // A body of about 40 KB with data nested 20,000 arrays deep must get a 400 that is counted,
  // without overflowing the stack of the value count check.
  test('V2 data nested past its shape gets 400', async () => {
    const depth = 20_000;
    const deepData = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    const before = metricValue(await gateway.metricsText(), 'infergate_requests_total', { model: 'tabular', protocol: 'v2', outcome: 'rejected_invalid' });
    const deep = await postJson(`${gateway.trafficUrl}/v2/models/tabular/infer`, `{"inputs":[{"name":"INPUT0","shape":[1,1],"datatype":"FP32","data":${deepData}}]}`);
    assert.equal(deep.status, 400);
    assert.equal(deep.body.error, 'invalid_value: inputs[0].data is nested deeper than its shape [1,1] allows (arrays at most 2 levels deep); nest it by the shape or send it flat');
    const after = metricValue(await gateway.metricsText(), 'infergate_requests_total', { model: 'tabular', protocol: 'v2', outcome: 'rejected_invalid' });
    assert.equal(after - before, 1);

    const oneTooDeep = await postJson(`${gateway.trafficUrl}/v2/models/tabular/infer`, { inputs: [{ name: 'INPUT0', shape: [2], datatype: 'FP32', data: [[1], [2]] }] });
    assert.equal(oneTooDeep.status, 400);
    assert.match(oneTooDeep.body.error, /inputs\[0\]\.data is nested deeper than its shape \[2\] allows \(arrays at most 1 level deep\)/);
  });

  test('V2 binary extension gets 415', async () => {
    const withoutData = await postJson(`${gateway.trafficUrl}/v2/models/tabular/infer`, { inputs: [{ name: 'INPUT0', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }] });
    assert.equal(withoutData.status, 415);
    assert.equal(withoutData.body.error, 'unsupported_binary_extension: the request uses the binary tensor data extension (inputs[0].parameters.binary_data_size), which this gateway does not support; send every tensor as JSON in "data"');

    const binaryOutput = await postJson(`${gateway.trafficUrl}/v2/models/tabular/infer`, { inputs: [{ name: 'INPUT0', shape: [1], datatype: 'FP32', data: [1] }], outputs: [{ name: 'OUTPUT0', parameters: { binary_data_output: true } }] });
    assert.equal(binaryOutput.status, 415);
    assert.match(binaryOutput.body.error, /^unsupported_binary_extension: .*\(outputs\[0\]\.parameters\.binary_data_output\)/);

    const requestLevel = await postJson(`${gateway.trafficUrl}/v2/models/tabular/infer`, { parameters: { binary_data_output: true }, inputs: [{ name: 'INPUT0', shape: [1], datatype: 'FP32', data: [1] }] });
    assert.equal(requestLevel.status, 415);
    assert.match(requestLevel.body.error, /\(parameters\.binary_data_output\)/);

    // What a Triton client sends: the JSON header, then the raw tensor bytes, as octet-stream.
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }] }));
    const body = Buffer.concat([header, Buffer.from(new Float32Array([1.5]).buffer)]);
    const raw = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const url = new URL(`${gateway.trafficUrl}/v2/models/tabular/infer`);
      const call = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length), 'content-length': String(body.length) } },
        (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        },
      );
      call.on('error', reject);
      call.end(body);
    });
    assert.equal(raw.status, 415);
    assert.match(raw.text, /unsupported_binary_extension: .*\(header Inference-Header-Content-Length\)/);
  });
});
