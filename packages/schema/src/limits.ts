/**
 * Limits that are part of the v1 event contract: emitters may rely on anything inside them being
 * accepted, and everything outside them is rejected (dead-lettered with the reason), never truncated
 * here. Lengths of strings count UTF-16 code units (JavaScript `length`); sizes count UTF-8 bytes.
 */

/**
 * One serialized event, in UTF-8 bytes. Room for a full-size `args` and error message plus every
 * identifier at its limit, yet a quarter of Kafka's default 1 MiB `max.message.bytes`, so a batch of
 * events never needs broker tuning.
 */
export const MAX_EVENT_BYTES = 256 * 1024;

/**
 * `args` serialized as JSON, in UTF-8 bytes. Sources truncate larger values and keep their SHA-256
 * (DESIGN: never stored whole); 64 KiB keeps a ClickHouse row small enough for fast scans.
 */
export const MAX_ARGS_BYTES = 64 * 1024;

/**
 * Nesting of `args`, counting `args` itself as level 1. Real tool input schemas rarely go past 5;
 * the cap keeps every later recursive walk (redaction, zod) far from the stack limit.
 */
export const MAX_ARGS_DEPTH = 32;

/** Nesting of the whole document: the root object plus `args`. Unknown fields get the same bound. */
export const MAX_EVENT_DEPTH = MAX_ARGS_DEPTH + 1;

/** Identifiers and short strings (ids, names, versions, user agents, method, error code, auth reason). */
export const MAX_STRING_LENGTH = 1024;

/**
 * `tool.annotations.title`: a display name for a tool (MCP `ToolAnnotations.title`); a human-readable
 * label, not a description, so 256 is ample.
 */
export const MAX_TOOL_TITLE_LENGTH = 256;

/** `error.message`: enough for a redacted stack-free message, not a dumped response. */
export const MAX_ERROR_MESSAGE_LENGTH = 8 * 1024;

/** `labels` entries. Labels are for grouping and filtering, so a handful is normal; 64 is generous. */
export const MAX_LABELS = 64;
export const MAX_LABEL_KEY_LENGTH = 128;
export const MAX_LABEL_VALUE_LENGTH = 256;

/**
 * How far `ts` may be ahead of the receiver's clock. Sources run NTP and are milliseconds apart;
 * 5 minutes is Kerberos' default skew tolerance and still stops a source from planting events in
 * future hours, where they would distort baselines and off-hours detection.
 */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * How far `ts` may be behind the receiver's clock. It covers a source that buffered through a long
 * outage (a holiday weekend plus the time to notice) and replay from the dead-letter topic, with
 * margin. Anything older would land in day partitions that baselines (28-day window) have already
 * consumed, that retention may have dropped or that an integrity export has already sealed, so a
 * back-dated event could rewrite history. Replays of older dead letters pass the original `now`.
 */
export const MAX_EVENT_AGE_MS = 30 * 24 * 60 * 60 * 1000;

/** Keys rejected anywhere in an event: they reach `Object.prototype` through naive merges. */
export const FORBIDDEN_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

/** At most this many issues are reported per rejected event (the rest are counted, not listed). */
export const MAX_REPORTED_ISSUES = 20;
