/**
 * Join tokens: one-time, expiring invitations to a mesh. A token carries the controller's URL
 * and roster key (so the new node can verify what it receives) and a secret derived from the
 * controller's token key and the token id. The secret itself never crosses the network: the
 * joining node sends an HMAC of its request under it (so a token seen in transit cannot enroll
 * another key), and the controller recomputes the secret from the id.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { OpdbusError, canonicalJson } from '@opdbus/core';

const PREFIX = 'opdbus-mesh1:';

/** What a token says. */
export interface JoinToken {
  /** The mesh. */
  mesh: string;
  /** The controller's base URL, e.g. `http://192.0.2.1:7800`. */
  url: string;
  /** The controller's roster key (signed-note verifier key). */
  key: string;
  /** The token id (the controller records it, and its use). */
  id: string;
  /** The node name it is for, when the controller bound it to one. */
  node?: string;
  /** Expiry, seconds since the epoch. */
  expires: number;
  /** The secret (32 bytes). */
  secret: Buffer;
}

function tokenError(message: string): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_MESH_TOKEN', message);
}

/** A new token id. */
export function newTokenId(): string {
  return randomBytes(9).toString('base64url');
}

/** The secret of token `id` under the controller's token key. */
export function tokenSecret(tokenKey: Buffer, id: string): Buffer {
  return createHmac('sha256', tokenKey).update(`opdbus-mesh token ${id}`).digest();
}

/** The token as text: `opdbus-mesh1:` and base64url JSON. */
export function formatToken(token: JoinToken): string {
  const body: Record<string, unknown> = {
    m: token.mesh,
    u: token.url,
    k: token.key,
    i: token.id,
    e: token.expires,
    s: token.secret.toString('base64url'),
  };
  if (token.node !== undefined) body.n = token.node;
  return `${PREFIX}${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
}

/** Parse a token; throws `OPDBUS_ERR_MESH_TOKEN` naming what is wrong. Does not check expiry. */
export function parseToken(text: string): JoinToken {
  const trimmed = text.trim();
  if (!trimmed.startsWith(PREFIX))
    throw tokenError(`This is not an op-dbus mesh join token (it should start with "${PREFIX}").`);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(Buffer.from(trimmed.slice(PREFIX.length), 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
  } catch {
    throw tokenError('The join token is damaged (not base64url JSON); copy it again in full.');
  }
  const str = (k: string): string => {
    const v = body[k];
    if (typeof v !== 'string' || v === '')
      throw tokenError(`The join token is damaged (no "${k}"); copy it again in full.`);
    return v;
  };
  const secret = Buffer.from(str('s'), 'base64url');
  if (secret.length !== 32 || typeof body.e !== 'number')
    throw tokenError('The join token is damaged; copy it again in full.');
  const token: JoinToken = {
    mesh: str('m'),
    url: str('u'),
    key: str('k'),
    id: str('i'),
    expires: body.e,
    secret,
  };
  if (typeof body.n === 'string') token.node = body.n;
  return token;
}

/** The proof a joining node sends: HMAC-SHA256 under the token secret of the canonical request. */
export function joinProof(secret: Buffer, request: Record<string, unknown>): string {
  return createHmac('sha256', secret).update(canonicalJson(request)).digest('base64url');
}

/** Whether a proof is right (constant time). */
export function checkProof(secret: Buffer, request: Record<string, unknown>, proof: string): boolean {
  const want = Buffer.from(joinProof(secret, request), 'base64url');
  const got = Buffer.from(proof, 'base64url');
  return got.length === want.length && timingSafeEqual(got, want);
}
