import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '@mcp-audit/service-kit';
import { RPC_INVALID_REQUEST } from './audit.js';

const RPC_PARSE_ERROR = -32700;
const RPC_INTERNAL_ERROR = -32603;

/** fastify's own refusals before a handler runs (body parsing), as the gateway audits and answers them. */
const BODY_ERRORS: Record<string, { code: string; message: string; rpc: number }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'body_too_large',
    message: 'request body exceeds limits.body_bytes',
    rpc: RPC_INVALID_REQUEST,
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    code: 'invalid_json',
    message: 'Parse error: Invalid JSON',
    rpc: RPC_PARSE_ERROR,
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'invalid_json',
    message: 'Parse error: empty JSON body',
    rpc: RPC_PARSE_ERROR,
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'unsupported_media_type',
    message: 'Unsupported Media Type: Content-Type must be application/json',
    rpc: RPC_INVALID_REQUEST,
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'invalid_content_length',
    message: 'request body size did not match Content-Length',
    rpc: RPC_INVALID_REQUEST,
  },
};

/** A failed request as the gateway records and answers it: never the error's own message. */
export interface RequestError {
  status: number;
  code: string;
  message: string;
  rpc: number;
  /** fastify's `FST_…` code, when it was one. */
  fstCode?: string | undefined;
}

/**
 * An error handler for a plugin's routes. fastify's own refusals (body over limits.body_bytes, JSON
 * that does not parse, another media type) happen before a handler runs, after authentication:
 * `answer` audits and answers them in the plugin's own way.
 */
export function requestErrorHandler(
  log: Logger,
  bodyBytes: number,
  answer: (req: FastifyRequest, reply: FastifyReply, e: RequestError) => void,
) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const status =
      typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600
        ? err.statusCode
        : 500;
    if (status >= 500) log.error({ err }, 'request failed');
    if (reply.sent) return;
    const fstCode = typeof err.code === 'string' && /^FST_[A-Z0-9_]+$/.test(err.code) ? err.code : undefined;
    // NOTE: never err.message: a parse error may quote the body, and bodies carry arguments.
    const known = fstCode ? BODY_ERRORS[fstCode] : undefined;
    const r = known ?? {
      code: status < 500 ? 'bad_request' : 'internal_error',
      message: status < 500 ? `bad request${fstCode ? ` (${fstCode})` : ''}` : 'internal error',
      rpc: status < 500 ? RPC_INVALID_REQUEST : RPC_INTERNAL_ERROR,
    };
    const message = r.code === 'body_too_large' ? `${r.message} (${bodyBytes} bytes)` : r.message;
    answer(req, reply, { status, code: r.code, message, rpc: r.rpc, fstCode });
  };
}
