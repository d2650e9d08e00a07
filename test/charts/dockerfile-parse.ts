// A small Dockerfile reader for the image tests. No Docker engine or BuildKit runs on
// the test machines, and no Dockerfile parser is among the installed packages. So this
// module reads the syntax the tests need itself: line continuations, comments, parser
// directives, stages, and the exec (JSON) form of ENTRYPOINT and CMD.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

export const INSTRUCTIONS = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

export interface Instruction {
  keyword: string;
  /** Text after the keyword, continuation lines joined with spaces. */
  args: string;
  /** 1-based line of the keyword. */
  line: number;
}

export interface Stage {
  name: string;
  /** Image or earlier stage the stage starts from. */
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARG instructions before the first FROM. */
  globalArgs: Instruction[];
  stages: Stage[];
}

/** Parses Dockerfile text; throws on an unknown instruction or an instruction outside a stage. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  let pending: { keyword: string; parts: string[]; line: number } | undefined;
  for (const [index, raw] of lines.entries()) {
    const trimmed = raw.trim();
    // Comment lines are dropped even inside a continued instruction, as BuildKit does.
    if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) continue;
    const continued = trimmed.endsWith('\\');
    const content = continued ? trimmed.slice(0, -1).trim() : trimmed;
    if (pending === undefined) {
      const match = /^([A-Za-z]+)(\s+(.*))?$/.exec(content);
      if (match === null) throw new Error(`line ${index + 1}: cannot parse ${JSON.stringify(raw)}`);
      const keyword = (match[1] ?? '').toUpperCase();
      if (!INSTRUCTIONS.has(keyword)) throw new Error(`line ${index + 1}: unknown instruction ${match[1]}`);
      pending = { keyword, parts: [match[3] ?? ''], line: index + 1 };
    } else if (content !== '') {
      pending.parts.push(content);
    }
    if (!continued) {
      instructions.push({ keyword: pending.keyword, args: pending.parts.join(' ').trim(), line: pending.line });
      pending = undefined;
    }
  }
  if (pending !== undefined) throw new Error(`line ${pending.line}: ${pending.keyword} ends with a line continuation`);

  const result: Dockerfile = { globalArgs: [], stages: [] };
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
      const [image, as, name] = words;
      if (!image) throw new Error(`line ${instruction.line}: FROM without an image`);
      if (as !== undefined && (as.toUpperCase() !== 'AS' || name === undefined)) throw new Error(`line ${instruction.line}: expected FROM image AS name`);
      result.stages.push({ name: name ?? String(result.stages.length), from: image, instructions: [] });
      continue;
    }
    const stage = result.stages.at(-1);
    if (stage === undefined) {
      if (instruction.keyword !== 'ARG') throw new Error(`line ${instruction.line}: ${instruction.keyword} before the first FROM`);
      result.globalArgs.push(instruction);
      continue;
    }
    stage.instructions.push(instruction);
  }
  return result;
}

/** Returns the stage and its ancestors (by FROM of an earlier stage), the stage itself first. */
export function stageChain(dockerfile: Dockerfile, name: string): Stage[] {
  const chain: Stage[] = [];
  let current = dockerfile.stages.find((stage) => stage.name === name);
  while (current !== undefined) {
    chain.push(current);
    const parent = current.from;
    current = dockerfile.stages.find((stage) => stage.name === parent);
  }
  return chain;
}

export interface CopyInstruction {
  from: string | undefined;
  sources: string[];
  destination: string;
  line: number;
}

/** COPY instructions of one stage, shell form only (the form this repository uses). */
export function copiesOf(stage: Stage): CopyInstruction[] {
  return stage.instructions
    .filter((instruction) => instruction.keyword === 'COPY')
    .map((instruction) => {
      const words = instruction.args.split(/\s+/);
      const flags = words.filter((word) => word.startsWith('--'));
      const paths = words.filter((word) => !word.startsWith('--'));
      const from = flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length);
      const destination = paths.pop();
      if (destination === undefined || paths.length === 0) throw new Error(`line ${instruction.line}: COPY needs a source and a destination`);
      return { from, sources: paths, destination, line: instruction.line };
    });
}

/** Parses the exec form of ENTRYPOINT or CMD into an array; throws on the shell form. */
export function execForm(instruction: Instruction): string[] {
  const parsed = JSON.parse(instruction.args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw new Error(`line ${instruction.line}: ${instruction.keyword} must use the exec form (a JSON array of strings)`);
  }
  return parsed;
}

/** Checks whether .dockerignore patterns exclude a context path (globs with * and **, ! re-includes). */
export function isIgnored(path: string, patterns: string[]): boolean {
  let ignored = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const body = negated ? pattern.slice(1) : pattern;
    if (globMatches(body, path)) ignored = !negated;
  }
  return ignored;
}

function globMatches(pattern: string, path: string): boolean {
  const source = pattern
    .split('/')
    .map((segment) => (segment === '**' ? '.*' : segment.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
    .join('/')
    .replace(/\.\*\//g, '(.*/)?');
  // A pattern that names a directory excludes everything below it.
  return new RegExp(`^${source}(/.*)?$`).test(path);
}

/** Reads .dockerignore into patterns, without comments and blank lines. */
export function readDockerignore(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

const IMPORT_PATTERN = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;
// Files a module opens relative to itself, such as package.json or a child process entry.
const MODULE_URL_PATTERN = /new URL\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g;

export interface ImportGraph {
  /** Repository-relative paths of every local module and module-relative file reached. */
  files: Set<string>;
  /** Package names imported (without node: builtins). */
  packages: Set<string>;
  /** Relative imports that point at no file. */
  missing: string[];
}

/**
 * Follows the run-time imports (static and literal dynamic) from an entry point through
 * local .ts files, with the files modules open through new URL(path, import.meta.url).
 */
export function importGraph(repoRoot: string, entry: string): ImportGraph {
  const graph: ImportGraph = { files: new Set(), packages: new Set(), missing: [] };
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (graph.files.has(file)) continue;
    graph.files.add(file);
    const text = readFileSync(join(repoRoot, file), 'utf8');
    for (const match of text.matchAll(IMPORT_PATTERN)) {
      const specifier = match[1] ?? match[2] ?? match[3];
      if (specifier === undefined || specifier.startsWith('node:')) continue;
      // Type stripping erases type-only imports, so they load nothing at run time.
      if (/^(import|export)\s+type\s/.test(match[0])) continue;
      if (specifier.startsWith('.')) {
        const target = normalize(relative(repoRoot, join(repoRoot, dirname(file), specifier)));
        if (existsSync(join(repoRoot, target))) queue.push(target);
        else graph.missing.push(`${file} imports ${specifier}`);
        continue;
      }
      const parts = specifier.split('/');
      graph.packages.add(specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string));
    }
    for (const match of text.matchAll(MODULE_URL_PATTERN)) {
      const target = normalize(relative(repoRoot, join(repoRoot, dirname(file), match[1] as string)));
      if (!existsSync(join(repoRoot, target))) graph.missing.push(`${file} opens ${match[1]}`);
      else if (target.endsWith('.ts')) queue.push(target);
      else graph.files.add(target);
    }
  }
  return graph;
}
