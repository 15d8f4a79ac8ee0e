import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Logger } from '@mcp-audit/service-kit';
import { cleanText } from './audit-events.js';
import type { HttpAudit } from './audit.js';
import type { ClientAuth } from './client-auth.js';
import { requestErrorHandler } from './request-errors.js';
import type { ToolGuard } from './tool-guard.js';

const approveBody = z.strictObject({
  upstream: z.string().min(1),
  tool: z.string().min(1),
  /** The `current_hash` the operator reviewed (GET /admin/tools); refused with 409 once it is not current. */
  definition_hash: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be a current_hash from GET /admin/tools (64 lowercase hex)')
    .optional(),
});

export interface ToolApprovalRoutesOptions {
  auth: ClientAuth;
  audit: HttpAudit;
  guard: ToolGuard;
  log: Logger;
  bodyBytes: number;
}

/**
 * Admin routes (scope `admin`) of the rug-pull guard: `GET /admin/tools` lists every tool's
 * approved and current definition; `POST /admin/tools/approve` approves the reviewed one. Every
 * action is audited, refused ones included.
 */
export const toolApprovalRoutes: FastifyPluginAsync<ToolApprovalRoutesOptions> = async (app, opts) => {
  const { audit, guard, log } = opts;

  app.setErrorHandler(
    requestErrorHandler(log, opts.bodyBytes, (req, reply, e) => {
      audit.admin(req, {
        outcome: 'error',
        http_status: e.status,
        error: { code: e.code, message: e.message },
        ...(e.fstCode ? { labels: { fastify_code: e.fstCode } } : {}),
      });
      void reply.code(e.status).send({
        error: e.status < 500 ? 'AUDIT_ERR_INVALID_REQUEST' : 'AUDIT_ERR_INTERNAL',
        message: e.message,
      });
    }),
  );

  app.get('/admin/tools', { onRequest: opts.auth.hook('admin') }, async () => ({
    guard: guard.enabled,
    tools: guard
      .entries()
      .map((e) => ({ ...e, blocked: guard.enabled && e.current_hash !== e.approved_hash })),
  }));

  app.post('/admin/tools/approve', { onRequest: opts.auth.hook('admin') }, async (req, reply) => {
    const id = req.identity!;
    const parsed = approveBody.safeParse(req.body);
    if (!parsed.success) {
      const message = parsed.error.issues
        .map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)
        .join('; ');
      audit.admin(req, { outcome: 'error', http_status: 400, error: { code: 'invalid_request', message } });
      return reply.code(400).send({ error: 'AUDIT_ERR_INVALID_REQUEST', message });
    }
    const { upstream, tool, definition_hash: requested } = parsed.data;
    const toolName = cleanText(tool) ?? '(missing)';
    const result = guard.approve(upstream, tool, id.clientId, requested);
    if (!result.ok && result.reason === 'not_found') {
      const message = `no tool "${toolName}" seen on upstream "${cleanText(upstream) ?? ''}"`;
      audit.admin(req, {
        upstream,
        tool: { name: toolName },
        outcome: 'error',
        http_status: 404,
        error: { code: 'unknown_tool', message },
      });
      return reply.code(404).send({ error: 'AUDIT_ERR_NOT_FOUND', message });
    }
    if (!result.ok) {
      // The definition changed between the operator's review and this approval: approving now
      // would trust a definition nobody looked at.
      const message = `tool "${toolName}" of "${upstream}" is now at definition hash ${result.currentHash}, not ${requested}: its definition changed since it was listed; review it again`;
      log.warn(
        { upstream, tool, requested, current: result.currentHash, by: id.clientId },
        'stale approval refused',
      );
      audit.admin(req, {
        upstream,
        tool: { name: toolName, definition_hash: result.currentHash },
        outcome: 'denied',
        http_status: 409,
        error: { code: 'definition_changed', message },
        labels: { change: 'approval_refused', requested_hash: requested ?? '' },
      });
      return reply.code(409).send({
        error: 'AUDIT_ERR_DEFINITION_CHANGED',
        message,
        requested_hash: requested,
        current_hash: result.currentHash,
      });
    }
    const { entry, previousApprovedHash } = result;
    log.warn({ upstream, tool, hash: entry.approved_hash, by: id.clientId }, 'tool definition approved');
    audit.admin(req, {
      upstream,
      tool: { name: toolName, definition_hash: entry.approved_hash },
      outcome: 'ok',
      http_status: 200,
      labels: {
        change: 'approved',
        previous_approved_hash: previousApprovedHash,
        hash_checked: requested === undefined ? 'false' : 'true',
      },
    });
    return { approved: entry };
  });
};
