// Runs the autoscaler as a child process (node autoscaler/src/main.ts) and reads its
// JSON log lines, the way an operator runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../../autoscaler/src/main.ts', import.meta.url));

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface AutoscalerProcess {
  apiUrl: string;
  adminUrl: string;
  child: ChildProcess;
  logs: LogLine[];
  stderr: string[];
  stop(): Promise<number | null>;
}

export async function startAutoscalerProcess(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<AutoscalerProcess> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, LOG_LEVEL: 'debug', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const started = await new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`autoscaler did not start within ${timeoutMs} ms:\n${stderr.join('\n')}\n${logs.map((l) => l.msg).join('\n')}`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`autoscaler exited with code ${code} before it started:\n${stderr.join('\n')}\n${JSON.stringify(logs.slice(-5))}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: LogLine;
      try {
        entry = JSON.parse(line) as LogLine;
      } catch {
        stderr.push(line);
        return;
      }
      logs.push(entry);
      if (entry.msg === 'autoscaler started') {
        clearTimeout(timer);
        resolve(entry);
      }
    });
  });

  return {
    apiUrl: String(started.apiUrl),
    adminUrl: String(started.adminUrl),
    child,
    logs,
    stderr,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Polls `condition` every 50 ms until it holds; throws naming `what` after timeoutMs. */
export async function waitFor<T>(condition: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
