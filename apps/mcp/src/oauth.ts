import { readFileSync } from 'node:fs';
import type { OAuthProtectedResourceMetadata } from '@modelcontextprotocol/sdk/shared/auth.js';
import { OpdbusError } from '@opdbus/core';
import type { TokenIdentity, TokenScope } from '@opdbus/runtime';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';

/** Options of {@link OAuthResourceServer}: what `--oauth-issuer`, `--oauth-jwks` and `--oauth-resource` say. */
export interface OAuthOptions {
  /** The authorization server's issuer identifier (the `iss` tokens must carry). */
  issuer: string;
  /** Its signing keys: a JWKS file (`{"keys": [...]}`) or an `https:` URL (fetched and cached by jose). */
  jwks: string;
  /** This server's resource identifier, the audience tokens must name (default: the MCP endpoint's URL). */
  resource?: string;
  /** The scope that grants reading (default `read`; `opdbus:read` is accepted too). */
  readScope?: string;
  /** The scope that grants the write tools (default `write`; `opdbus:write` is accepted too). */
  writeScope?: string;
}

/** A verified access token: who it is and what it may do. */
export interface OAuthIdentity extends TokenIdentity {
  /** The token's scopes, as granted. */
  scopes: string[];
  /** The client it was issued to (`client_id` or `azp`), when the token says. */
  clientId?: string;
}

/** Why a token was not accepted: `invalid_token` (401) or `insufficient_scope` (403). */
export class OAuthRefusal extends Error {
  constructor(
    readonly error: 'invalid_token' | 'insufficient_scope',
    message: string,
  ) {
    super(message);
  }
}

const configError = (message: string, cause?: unknown): OpdbusError =>
  new OpdbusError('OPDBUS_ERR_MCP_OAUTH_CONFIG', message, cause === undefined ? {} : { cause });

function keySet(jwks: string): JWTVerifyGetKey {
  if (/^https?:\/\//.test(jwks)) {
    const url = new URL(jwks);
    if (url.protocol !== 'https:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname))
      throw configError(`--oauth-jwks ${jwks}: a JWKS URL must be https (or loopback).`);
    return createRemoteJWKSet(url);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(jwks, 'utf8'));
  } catch (err) {
    throw configError(`--oauth-jwks ${jwks}: cannot read a JWKS document: ${(err as Error).message}`, err);
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { keys?: unknown }).keys))
    throw configError(`--oauth-jwks ${jwks}: not a JWKS document (an object with a "keys" array).`);
  return createLocalJWKSet(parsed as JSONWebKeySet);
}

/**
 * opdbus-mcp as an OAuth 2.1 resource server (MCP authorization, RFC 9728): access tokens are JWTs
 * signed by the configured issuer (verified against its JWKS with jose), whose audience must be
 * this server's resource URL; the `scope` (or `scp`) claim grants `read` and `write`. It publishes
 * its protected resource metadata, and says where it is in every 401's WWW-Authenticate.
 */
export class OAuthResourceServer {
  readonly issuer: string;
  readonly #keys: JWTVerifyGetKey;
  readonly #resource: () => string;
  readonly #read: Set<string>;
  readonly #write: Set<string>;
  readonly #readScope: string;
  readonly #writeScope: string;

  /**
   * @param resource - this server's resource URL when not given in the options (a listener knows
   *   its port late, so it is read per request)
   */
  constructor(options: OAuthOptions, resource: () => string) {
    this.issuer = options.issuer;
    try {
      new URL(options.issuer);
    } catch (err) {
      throw configError(`--oauth-issuer ${options.issuer}: not a URL.`, err);
    }
    if (options.resource !== undefined) {
      try {
        new URL(options.resource);
      } catch (err) {
        throw configError(`--oauth-resource ${options.resource}: not a URL.`, err);
      }
    }
    this.#keys = keySet(options.jwks);
    const fixed = options.resource;
    this.#resource = fixed === undefined ? resource : () => fixed;
    this.#readScope = options.readScope ?? 'read';
    this.#writeScope = options.writeScope ?? 'write';
    this.#read = new Set([this.#readScope, 'opdbus:read']);
    this.#write = new Set([this.#writeScope, 'opdbus:write']);
  }

  /** This server's resource identifier (the audience tokens must carry). */
  get resource(): string {
    return this.#resource();
  }

  /** Where the protected resource metadata is: `/.well-known/oauth-protected-resource` + the resource's path. */
  metadataUrl(): string {
    const url = new URL(this.resource);
    const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
    return new URL(`/.well-known/oauth-protected-resource${path}`, url).href;
  }

  /** The RFC 9728 protected resource metadata. */
  metadata(): OAuthProtectedResourceMetadata {
    return {
      resource: this.resource,
      authorization_servers: [this.issuer],
      scopes_supported: [this.#readScope, this.#writeScope],
      bearer_methods_supported: ['header'],
      resource_name: 'op-dbus MCP server',
    };
  }

  /**
   * Verify an access token: signature (the issuer's JWKS), `iss`, `aud` (this resource), `exp` and
   * `nbf`; then its scopes. Throws {@link OAuthRefusal}.
   */
  async verify(token: string): Promise<OAuthIdentity> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, { issuer: this.issuer, audience: this.resource }));
    } catch (err) {
      const why =
        err instanceof joseErrors.JWTClaimValidationFailed
          ? `the token's ${err.claim} claim is not accepted (${err.reason})`
          : err instanceof joseErrors.JWTExpired
            ? 'the token has expired'
            : 'the token is not a JWT signed by the configured issuer';
      throw new OAuthRefusal('invalid_token', why);
    }
    const scopes =
      typeof payload.scope === 'string'
        ? payload.scope.split(' ').filter((s) => s !== '')
        : Array.isArray(payload.scp)
          ? payload.scp.filter((s): s is string => typeof s === 'string')
          : [];
    const scope: TokenScope | undefined = scopes.some((s) => this.#write.has(s))
      ? 'write'
      : scopes.some((s) => this.#read.has(s))
        ? 'read'
        : undefined;
    if (scope === undefined)
      throw new OAuthRefusal(
        'insufficient_scope',
        `the token grants neither ${this.#readScope} nor ${this.#writeScope}`,
      );
    const clientId =
      typeof payload.client_id === 'string'
        ? payload.client_id
        : typeof payload.azp === 'string'
          ? payload.azp
          : undefined;
    const subject = typeof payload.sub === 'string' ? payload.sub : (clientId ?? 'unknown');
    return { name: `oauth:${subject}`, scope, scopes, ...(clientId === undefined ? {} : { clientId }) };
  }
}
