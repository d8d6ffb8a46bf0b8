/** The node side of the controller's HTTP API. */
import { OpdbusError } from '@opdbus/core';
import { meshErrors, type MeshErrorCode } from './errors.js';

/** Options of {@link callController}. */
export interface CallOptions {
  method: 'GET' | 'POST';
  body?: unknown;
  /** Default 15 s. */
  timeoutMs?: number;
}

/**
 * Call the controller: JSON in and out. An error the controller answers keeps its code (a
 * refused token is `OPDBUS_ERR_MESH_TOKEN` here too); one that cannot reach it is
 * `OPDBUS_ERR_MESH_CONTROLLER`.
 */
export async function callController(baseUrl: string, path: string, options: CallOptions): Promise<unknown> {
  const url = `${baseUrl}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.method,
      headers: options.body === undefined ? {} : { 'content-type': 'application/json' },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    throw new OpdbusError(
      'OPDBUS_ERR_MESH_CONTROLLER',
      `Cannot reach the mesh controller at ${baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}; check that \`opdbus mesh serve\` runs there and is reachable from this node.`,
      { data: { url }, cause: err },
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    // The controller's own codes keep their identity; anything else is reported as it answered.
    const code = error?.code;
    if (code !== undefined && Object.hasOwn(meshErrors, code) && error?.message !== undefined)
      throw new OpdbusError(code as MeshErrorCode, `The mesh controller refused: ${error.message}`, {
        data: { url, status: response.status },
      });
    throw new OpdbusError(
      'OPDBUS_ERR_MESH_CONTROLLER',
      `The mesh controller at ${baseUrl} answered ${response.status}: ${error?.message ?? text.slice(0, 200)}`,
      {
        data: { url, status: response.status },
      },
    );
  }
  return body;
}
