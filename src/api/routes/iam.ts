/** IAM: POST /v3/auth/tokens (password method) → 201 with the token in X-Subject-Token (reference C). */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { jsonBody, setNoStore } from '../http.js';

export function registerIamRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v3/auth/tokens', { config: { service: 'iam', action: 'iam:tokens:create' } }, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const { token, body } = await ctx.iam.issueToken(jsonBody(req), q.nocatalog === 'true');
    setNoStore(reply);
    reply.header('x-subject-token', token);
    return reply.code(201).send(body);
  });
}
