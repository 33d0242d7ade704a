/**
 * Vendors the subset of OpenAI's OpenAPI spec that the fake OpenAI server (test/fakes/openai.ts)
 * implements into test/spec/openai-openapi.subset.json.
 *
 * Source: OpenAI's published OpenAPI 3.1 document for the REST API (info.title "OpenAI API"),
 * published by OpenAI in https://github.com/openai/openai-openapi (the document the official SDKs
 * are generated from; the API reference at https://platform.openai.com/docs/api-reference renders
 * it). The subset in this repo was generated from a copy with info.version 2.3.0 (kept in the
 * subset's info.version), taken from the shared workspace file openai-openapi.yaml.
 *
 * Refresh: download the current spec (YAML or JSON) and run
 *   node_modules/.bin/node --experimental-strip-types test/spec/vendor-openai-spec.ts <path-to-full-spec>
 * then run `npx vitest run test/fakes` and fix whatever the new spec makes the fake violate.
 *
 * What is kept: the operations listed in OPERATIONS (only those methods), every component schema
 * and component response they reference (transitively), plus the EXTRA_SCHEMAS roots. What is
 * dropped: documentation-only keys (description, summary, title, example(s), x-* vendor
 * extensions such as x-oaiMeta) so the file stays small; nothing that affects validation is
 * changed. Spec quirks (nullable, discriminator, $recursiveRef) are handled at load time by
 * test/fakes/openapi-validator.ts, not here, so the subset stays a faithful excerpt.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** path template -> HTTP methods the fake implements. */
export const OPERATIONS: Record<string, string[]> = {
  '/files': ['post'],
  '/files/{file_id}': ['get', 'delete'],
  '/files/{file_id}/content': ['get'],
  '/uploads': ['post'],
  '/uploads/{upload_id}/parts': ['post'],
  '/uploads/{upload_id}/complete': ['post'],
  '/uploads/{upload_id}/cancel': ['post'],
  '/conversations': ['post'],
  '/conversations/{conversation_id}': ['get', 'delete'],
  '/conversations/{conversation_id}/items': ['get'],
  '/containers': ['get', 'post'],
  '/containers/{container_id}': ['get', 'delete'],
  '/containers/{container_id}/files': ['get', 'post'],
  '/containers/{container_id}/files/{file_id}': ['get', 'delete'],
  '/containers/{container_id}/files/{file_id}/content': ['get'],
  '/responses': ['post'],
  '/responses/{response_id}': ['get', 'delete'],
  '/responses/{response_id}/cancel': ['post'],
  '/chat/completions': ['post'],
  '/models/{model}': ['get'],
};

/** Schemas kept even if no operation references them. */
export const EXTRA_SCHEMAS = ['ErrorResponse', 'Error', 'ResponseStreamEvent', 'CreateChatCompletionStreamResponse'];

/** Keys under which the children are named entries (property names etc.), not schema keywords. */
const NAMED_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'schemas', 'responses', 'paths', 'content', 'headers', 'mapping', 'dependentSchemas', 'dependentRequired']);
const DOC_KEYS = new Set(['description', 'summary', 'title', 'example', 'examples', 'externalDocs']);

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Drops documentation-only keys; never touches the names inside `properties` and similar maps. */
export function stripDocs(node: Json, namedMap = false): Json {
  if (Array.isArray(node)) return node.map((n) => stripDocs(n));
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (!namedMap && (DOC_KEYS.has(key) || key.startsWith('x-'))) continue;
    out[key] = stripDocs(value, !namedMap && NAMED_MAPS.has(key));
  }
  return out;
}

function collectRefs(node: Json, into: Set<string>): void {
  if (Array.isArray(node)) {
    for (const n of node) collectRefs(n, into);
  } else if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') into.add(value);
      else collectRefs(value, into);
    }
  }
}

function lookup(spec: JsonObject, ref: string): Json | undefined {
  if (!ref.startsWith('#/')) throw new Error(`external $ref not supported: ${ref}`);
  let node: Json | undefined = spec;
  for (const raw of ref.slice(2).split('/')) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    node = isObject(node) ? node[part] : undefined;
  }
  return node;
}

export function buildSubset(spec: JsonObject): JsonObject {
  const specPaths = spec['paths'];
  if (!isObject(specPaths)) throw new Error('spec has no paths');
  const paths: JsonObject = {};
  for (const [path, methods] of Object.entries(OPERATIONS)) {
    const item = specPaths[path];
    if (!isObject(item)) throw new Error(`spec has no path ${path}`);
    const kept: JsonObject = {};
    for (const method of methods) {
      const op = item[method];
      if (!isObject(op)) throw new Error(`spec has no ${method.toUpperCase()} ${path}`);
      kept[method] = op;
    }
    if (item['parameters'] !== undefined) kept['parameters'] = item['parameters'];
    paths[path] = stripDocs(kept);
  }

  // Transitive closure over $refs, starting from the kept operations and the extra roots.
  const components: Record<string, JsonObject> = {};
  const pending = new Set<string>();
  collectRefs(paths, pending);
  for (const name of EXTRA_SCHEMAS) pending.add(`#/components/schemas/${name}`);
  const seen = new Set<string>();
  while (pending.size > 0) {
    const ref = pending.values().next().value as string;
    pending.delete(ref);
    if (seen.has(ref)) continue;
    seen.add(ref);
    const match = /^#\/components\/([^/]+)\/([^/]+)$/.exec(ref);
    if (!match) throw new Error(`unsupported $ref ${ref}`);
    const [, section = '', name = ''] = match;
    const target = lookup(spec, ref);
    if (target === undefined) throw new Error(`dangling $ref ${ref}`);
    const stripped = stripDocs(target);
    components[section] ??= {};
    components[section][name] = stripped;
    const more = new Set<string>();
    collectRefs(stripped, more);
    for (const r of more) if (!seen.has(r)) pending.add(r);
  }

  const sortedComponents: JsonObject = {};
  for (const section of Object.keys(components).sort()) {
    const entries = components[section] ?? {};
    const sorted: JsonObject = {};
    for (const name of Object.keys(entries).sort()) sorted[name] = entries[name] ?? null;
    sortedComponents[section] = sorted;
  }
  const info = isObject(spec['info']) ? spec['info'] : {};
  return {
    openapi: spec['openapi'] ?? '3.1.0',
    info: {
      title: info['title'] ?? 'OpenAI API',
      version: info['version'] ?? 'unknown',
      'x-crunch-vendored': {
        note: 'Subset of the OpenAI OpenAPI spec generated by test/spec/vendor-openai-spec.ts; do not edit by hand.',
        operations: Object.entries(OPERATIONS).flatMap(([p, ms]) => ms.map((m) => `${m.toUpperCase()} ${p}`)),
      },
    },
    paths,
    components: sortedComponents,
  };
}

function main(): void {
  const source = process.argv[2];
  if (source === undefined) {
    console.error('usage: node --experimental-strip-types test/spec/vendor-openai-spec.ts <path-to-openai-openapi.yaml|json>');
    process.exit(2);
  }
  const text = readFileSync(source, 'utf8');
  const spec = (source.endsWith('.json') ? JSON.parse(text) : parse(text, { maxAliasCount: -1 })) as Json;
  if (!isObject(spec)) throw new Error(`${source} is not an OpenAPI document`);
  const subset = buildSubset(spec);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'openai-openapi.subset.json');
  writeFileSync(out, `${JSON.stringify(subset, null, 1)}\n`);
  const schemas = subset['components'];
  const count = isObject(schemas) && isObject(schemas['schemas']) ? Object.keys(schemas['schemas']).length : 0;
  console.log(`wrote ${out}: ${Object.keys(OPERATIONS).length} paths, ${count} component schemas`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
