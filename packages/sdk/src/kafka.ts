// `@mcp-audit/sdk/kafka`: the Kafka sink. Its dependency, @mcp-audit/kafka (kafkajs), is an optional
// peer: only servers that produce to Kafka directly install it.
export { createKafkaSink, type KafkaSinkOptions } from './sinks/kafka.sink.js';
export { kafkaSinkFromEnv } from './sinks/kafka-sink-from-env.js';
