/**
 * Request bodies. Fastify hands every body over as raw bytes (KV values are
 * opaque); JSON endpoints decode here so a malformed body gets Consul's
 * answer — 400, text/plain, "Request decode failed: ..." — and fields of the
 * wrong type are named the way Go's decoder names them.
 */
import { badRequest } from './http-error.js';

/** A decoded JSON object. */
export type JsonObject = Record<string, unknown>;

/** Decodes a JSON body; an empty body is `undefined`. */
export function parseJson(body: unknown): unknown {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : '';
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`Request decode failed: ${(err as Error).message}`);
  }
}

/** Decodes a body that must be a JSON object (an empty body counts as `{}`). */
export function parseJsonObject(body: unknown): JsonObject {
  const value = parseJson(body);
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest(`Request decode failed: json: cannot unmarshal ${jsonType(value)} into a JSON object`);
  }
  return value as JsonObject;
}

/** A string field ('' when absent). */
export function str(obj: JsonObject, field: string): string {
  const v = obj[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw typeError(field, v, 'string');
  return v;
}

/** A string field, undefined when absent. */
export function optStr(obj: JsonObject, field: string): string | undefined {
  return obj[field] === undefined || obj[field] === null ? undefined : str(obj, field);
}

/** A non-negative integer field (`fallback` when absent). */
export function uint(obj: JsonObject, field: string, fallback = 0): number {
  const v = obj[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw typeError(field, v, 'uint');
  return v;
}

/** A boolean field (false when absent). */
export function bool(obj: JsonObject, field: string): boolean {
  const v = obj[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw typeError(field, v, 'bool');
  return v;
}

/** A list of strings ([] when absent). */
export function strList(obj: JsonObject, field: string): string[] {
  const v = obj[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw typeError(field, v, '[]string');
  return v as string[];
}

/** A map of string to string ({} when absent). */
export function strMap(obj: JsonObject, field: string): Record<string, string> {
  const v = obj[field];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((s) => typeof s !== 'string')) {
    throw typeError(field, v, 'map[string]string');
  }
  return { ...(v as Record<string, string>) };
}

/** A nested object, undefined when absent. */
export function obj(o: JsonObject, field: string): JsonObject | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError(field, v, 'object');
  return v as JsonObject;
}

/** A list of objects ([] when absent). */
export function objList(o: JsonObject, field: string): JsonObject[] {
  const v = o[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'object' || x === null || Array.isArray(x))) {
    throw typeError(field, v, '[]object');
  }
  return v as JsonObject[];
}

function typeError(field: string, value: unknown, want: string): Error {
  return badRequest(`Request decode failed: json: cannot unmarshal ${jsonType(value)} into Go struct field .${field} of type ${want}`);
}

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'object' : typeof v;
}
