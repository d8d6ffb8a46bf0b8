/**
 * The controller's HTTP API (fastify), served by `opdbus mesh serve` (and later by opdbusd):
 *
 * - `POST /v1/meshes/:mesh/join`: enroll a node (a join request with its token proof);
 * - `GET /v1/meshes/:mesh/roster`: the signed roster;
 * - `POST /v1/meshes/:mesh/key`: a node's signed key change (rotation).
 *
 * Everything a node receives is signed with the controller's roster key, which the node trusts
 * from its token; nothing secret crosses it (public keys, endpoints, addresses), so plain HTTP
 * on the underlay is enough. Errors answer `{ error: { code, message } }`.
 */
import { isOpdbusError, silentLogger, type Logger } from '@opdbus/core';
import Fastify, { type FastifyInstance } from 'fastify';
import { MeshController, type JoinRequest, type MeshRecorder } from './controller.js';
import { meshNamePattern } from './definition.js';

/** Options of {@link createMeshServer}. */
export interface MeshServerOptions {
  /** The state directory of the controller. */
  stateDir: string;
  record?: MeshRecorder;
  logger?: Logger;
}

const statusOf: Record<string, number> = {
  OPDBUS_ERR_MESH_INVALID: 400,
  OPDBUS_ERR_MESH_TOKEN: 403,
  OPDBUS_ERR_MESH_NODE: 409,
  OPDBUS_ERR_MESH_NOT_FOUND: 404,
  OPDBUS_ERR_MESH_POOL: 409,
};

/** The controller's API as a fastify instance (not listening yet). */
export function createMeshServer(options: MeshServerOptions): FastifyInstance {
  const logger = options.logger ?? silentLogger;
  const app = Fastify({ bodyLimit: 64 * 1024, logger: false });
  const open = (mesh: string): Promise<MeshController> =>
    MeshController.open(options.stateDir, mesh, {
      ...(options.record ? { record: options.record } : {}),
      logger,
    });

  app.setErrorHandler((err, request, reply) => {
    if (isOpdbusError(err)) {
      const status = statusOf[err.code] ?? 500;
      logger.warn({ code: err.code, url: request.url }, err.message);
      void reply.status(status).send({ error: { code: err.code, message: err.message } });
      return;
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    logger.error({ err, url: request.url }, 'mesh API error');
    void reply
      .status(status)
      .send({ error: { code: 'OPDBUS_ERR_MESH_CONTROLLER', message: (err as Error).message } });
  });

  const meshParam = {
    type: 'object',
    required: ['mesh'],
    properties: { mesh: { type: 'string', pattern: meshNamePattern.source } },
  } as const;

  app.get<{ Params: { mesh: string } }>(
    '/v1/meshes/:mesh/roster',
    { schema: { params: meshParam } },
    async (request) => {
      return { roster: (await (await open(request.params.mesh)).roster()).note };
    },
  );

  app.post<{ Params: { mesh: string }; Body: JoinRequest }>(
    '/v1/meshes/:mesh/join',
    {
      schema: {
        params: meshParam,
        body: {
          type: 'object',
          required: ['mesh', 'token', 'node', 'publicKey', 'keyGeneration', 'credential', 'proof'],
          additionalProperties: false,
          properties: {
            mesh: { type: 'string' },
            token: { type: 'string', maxLength: 64 },
            node: { type: 'string', maxLength: 63 },
            endpoint: { type: 'string', maxLength: 64 },
            subnets: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 64 } },
            interface: { type: 'string', maxLength: 15 },
            publicKey: { type: 'string', maxLength: 64 },
            keyGeneration: { type: 'integer', minimum: 1 },
            credential: { type: 'string', maxLength: 256 },
            proof: { type: 'string', maxLength: 64 },
          },
        },
      },
    },
    async (request) => {
      const controller = await open(request.params.mesh);
      const { note } = await controller.join({ ...request.body, mesh: request.params.mesh });
      return { roster: note };
    },
  );

  app.post<{ Params: { mesh: string }; Body: { request: string } }>(
    '/v1/meshes/:mesh/key',
    {
      schema: {
        params: meshParam,
        body: {
          type: 'object',
          required: ['request'],
          additionalProperties: false,
          properties: { request: { type: 'string', maxLength: 4096 } },
        },
      },
    },
    async (request) => {
      const controller = await open(request.params.mesh);
      return { roster: (await controller.changeKey(request.body.request)).note };
    },
  );

  return app;
}
