#!/usr/bin/env node
// Generates src/jobs/generated/types.ts from the worker's JSON Schemas
// (<kind>.payload.json / <kind>.result.json, written by `python -m worker schema`).
//
//   node scripts/gen-types.mjs            write the file
//   node scripts/gen-types.mjs --check    exit 1 if the file is out of date
//   --schemas DIR --out FILE             override the default locations
//
// All schemas are compiled as ONE combined schema so that a model used by
// several kinds (e.g. the design-tree node) is emitted once. Definitions with
// the same name and identical content are shared; same-name definitions that
// differ are prefixed with their kind.
import { compile } from 'json-schema-to-typescript';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PLACEHOLDER_MARK = '@placeholder';

function parseArgs(argv) {
  const args = { check: false, schemas: resolve(ROOT, '../worker/schemas'), out: resolve(ROOT, 'src/jobs/generated/types.ts') };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--check') args.check = true;
    else if (a === '--schemas') args.schemas = resolve(argv[++i]);
    else if (a === '--out') args.out = resolve(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

const pascal = (s) => s.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('');

/** JSON with sorted keys, so equal schemas compare equal. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const LOCAL_REF = /^#\/(?:\$defs|definitions)\/(.+)$/;

function localRefs(value, out = new Set()) {
  if (Array.isArray(value)) value.forEach((v) => localRefs(v, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') {
        const m = LOCAL_REF.exec(v);
        if (m) out.add(decodeURIComponent(m[1]));
      } else localRefs(v, out);
    }
  }
  return out;
}

function rewriteRefs(value, map) {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, map));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') {
        const m = LOCAL_REF.exec(v);
        out[k] = m && map.has(decodeURIComponent(m[1])) ? `#/$defs/${map.get(decodeURIComponent(m[1]))}` : v;
      } else out[k] = rewriteRefs(v, map);
    }
    return out;
  }
  return value;
}

function readSchemas(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => ({ name, m: /^(.+)\.(payload|result)\.json$/.exec(name) }))
    .filter(({ m }) => m)
    .map(({ name, m }) => ({ kind: m[1], role: m[2], schema: JSON.parse(readFileSync(join(dir, name), 'utf8')) }))
    .sort((a, b) => (a.kind === b.kind ? a.role.localeCompare(b.role) : a.kind.localeCompare(b.kind)));
}

/** Builds the combined schema: {kind: {payload, result}} plus merged $defs. */
export function combine(files) {
  const globalDefs = new Map(); // name -> { key, schema }
  const kinds = new Map(); // kind -> { payload, result }

  for (const { kind, role, schema } of files) {
    const { $defs, definitions, $schema: _s, $id: _i, ...rootSchema } = schema;
    const defs = { ...(definitions ?? {}), ...($defs ?? {}) };
    const names = Object.keys(defs);
    const closure = (name, seen = new Set()) => {
      if (seen.has(name)) return seen;
      seen.add(name);
      for (const ref of localRefs(defs[name] ?? {})) if (ref in defs) closure(ref, seen);
      return seen;
    };
    // A definition is shared only if it and everything it references already
    // exist globally under the same names with identical content.
    const shareable = (name) =>
      [...closure(name)].every((n) => globalDefs.has(n) && globalDefs.get(n).key === canonical(defs[n]));
    const map = new Map();
    for (const name of names) {
      if (!globalDefs.has(name) || shareable(name)) map.set(name, name);
      else map.set(name, `${pascal(kind)}${pascal(role)}${pascal(name)}`);
    }
    for (const name of names) {
      const target = map.get(name);
      if (globalDefs.has(target)) continue;
      const rewritten = rewriteRefs(defs[name], map);
      globalDefs.set(target, { key: canonical(defs[name]), schema: { ...rewritten, title: target } });
    }
    const entry = kinds.get(kind) ?? {};
    entry[role] = { ...rewriteRefs(rootSchema, map), title: `${pascal(kind)}${pascal(role)}` };
    kinds.set(kind, entry);
  }

  const kindNames = [...kinds.keys()].sort();
  const properties = {};
  for (const kind of kindNames) {
    const entry = kinds.get(kind);
    properties[kind] = {
      type: 'object',
      additionalProperties: false,
      required: ['payload', 'result'],
      properties: {
        // A missing schema means "anything" (emitted as unknown).
        payload: entry.payload ?? { title: `${pascal(kind)}Payload` },
        result: entry.result ?? { title: `${pascal(kind)}Result` },
      },
    };
  }
  const $defs = {};
  for (const [name, { schema }] of [...globalDefs.entries()].sort(([a], [b]) => a.localeCompare(b))) $defs[name] = schema;
  return {
    kindNames,
    schema: { title: 'JobKinds', type: 'object', additionalProperties: false, required: kindNames, properties, $defs },
  };
}

export async function generate(schemasDir) {
  const files = readSchemas(schemasDir);
  if (files.length === 0) return null;
  const { kindNames, schema } = combine(files);
  const body = await compile(schema, 'JobKinds', {
    bannerComment: '',
    unreachableDefinitions: false,
    additionalProperties: true,
    style: { singleQuote: true, printWidth: 110 },
  });
  const banner = [
    '/* eslint-disable */',
    '/**',
    ' * GENERATED by scripts/gen-types.mjs from the worker JSON Schemas',
    ' * (../worker/schemas/<kind>.payload.json, <kind>.result.json). Do not edit:',
    ' * run `npm run gen:types`; `npm run check:types` fails when this is stale.',
    ' */',
    '',
  ].join('\n');
  const tail = [
    '',
    'export type JobKind = keyof JobKinds;',
    '',
    `export const JOB_KINDS = [${kindNames.map((k) => `'${k}'`).join(', ')}] as const satisfies readonly JobKind[];`,
    '',
  ].join('\n');
  return `${banner}${body.trimEnd()}\n${tail}`;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const output = await generate(args.schemas);
  const current = existsSync(args.out) ? readFileSync(args.out, 'utf8') : null;

  if (output === null) {
    // No schemas yet (the worker has not written them). A placeholder file is
    // acceptable then; anything else means the schemas went missing.
    if (current?.includes(PLACEHOLDER_MARK)) {
      console.warn(`gen-types: no schemas in ${args.schemas}; ${args.out} is still the placeholder.`);
      if (args.check) return 0;
      console.error('gen-types: nothing to generate. Run `python -m worker schema` first.');
      return 1;
    }
    console.error(`gen-types: no *.payload.json / *.result.json schemas in ${args.schemas}. Run \`python -m worker schema\`.`);
    return 1;
  }

  if (args.check) {
    if (current === output) {
      console.log(`gen-types: ${args.out} is up to date.`);
      return 0;
    }
    console.error(`gen-types: ${args.out} is out of date with ${args.schemas}. Run \`npm run gen:types\`.`);
    return 1;
  }
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, output);
  console.log(`gen-types: wrote ${args.out}`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
