import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sinkFromEnv } from '../src/index.js';

describe('sinkFromEnv', () => {
  it('names a missing or bad MCP_AUDIT_SDK_SINK', () => {
    assert.throws(() => sinkFromEnv({}), /MCP_AUDIT_SDK_SINK: must be kafka or collector/);
    assert.throws(() => sinkFromEnv({ MCP_AUDIT_SDK_SINK: 'redis' }), /MCP_AUDIT_SDK_SINK/);
  });

  it('names the bad collector variables and never echoes the token', () => {
    const err = (() => {
      try {
        sinkFromEnv({
          MCP_AUDIT_SDK_SINK: 'collector',
          MCP_AUDIT_SDK_COLLECTOR_URL: 'ftp://x',
          MCP_AUDIT_SDK_COLLECTOR_TOKEN: 'short',
        });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    assert.ok(err);
    assert.match(err.message, /MCP_AUDIT_SDK_COLLECTOR_URL/);
    assert.match(err.message, /MCP_AUDIT_SDK_COLLECTOR_TOKEN/);
    assert.ok(!err.message.includes('short'));
  });

  it('names bad Kafka variables', () => {
    assert.throws(
      () => sinkFromEnv({ MCP_AUDIT_SDK_SINK: 'kafka', MCP_AUDIT_SDK_KAFKA_TOPIC: 'bad topic!' }),
      /MCP_AUDIT_SDK_KAFKA_TOPIC/,
    );
    assert.throws(
      () => sinkFromEnv({ MCP_AUDIT_SDK_SINK: 'kafka', MCP_AUDIT_KAFKA_SASL_MECHANISM: 'plain' }),
      /MCP_AUDIT_KAFKA_SASL_USERNAME/,
    );
    assert.throws(
      () => sinkFromEnv({ MCP_AUDIT_SDK_SINK: 'kafka', MCP_AUDIT_SDK_TIMEOUT_MS: 'soon' }),
      /MCP_AUDIT_SDK_TIMEOUT_MS/,
    );
  });

  it('builds a sink from valid settings without connecting', async () => {
    const k = sinkFromEnv({ MCP_AUDIT_SDK_SINK: 'kafka', MCP_AUDIT_KAFKA_BROKERS: '127.0.0.1:1' });
    assert.equal(typeof k.send, 'function');
    await k.close();
    const c = sinkFromEnv({
      MCP_AUDIT_SDK_SINK: 'collector',
      MCP_AUDIT_SDK_COLLECTOR_URL: 'http://127.0.0.1:9470',
      MCP_AUDIT_SDK_COLLECTOR_TOKEN: 'mcpa_0123456789abcdef',
    });
    await c.close();
  });
});
