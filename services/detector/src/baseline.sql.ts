import { float, ident, join, sql, type SqlFragment } from '@mcp-audit/clickhouse';
import {
  ERROR_SHARE_MIN_CALLS,
  METRICS,
  POOLED_CELLS,
  versionOf,
  type Grid,
  type Metric,
} from './baseline.js';
import { HOUR_MS } from './time.js';

/**
 * The per-client baselines of `computeClientBaseline` (baseline.ts), computed inside ClickHouse from
 * events_hourly and written with one INSERT … SELECT: no hourly row and no profile passes through
 * Node. baseline.ts stays the definition; test/baseline-sql.int.test.ts checks that both give the
 * same rows on the same data (learning clients, gaps, time zones, auth failures, error shares).
 *
 * Functions and shapes are those of ClickHouse 18.16 (and valid on 25.8): uniqExactMerge & co.,
 * groupArray/-Array/-If combinators, arraySort with a key array, transform over constant arrays,
 * SHA256. The local-time layout of the window (pooled cell, hour-of-week cell and local date of every
 * hour, the first hour of each local date, and how many hours each pooled cell holds from a given
 * start) comes from the same `buildGrid` the Node computation uses, as constant arrays: no time-zone
 * rule is evaluated twice, by two different tz databases.
 *
 * How the statement goes (the levels are its nested SELECTs, innermost first):
 *  A. one row per (client, hour) with the merged counts, the hour's index in the window and its cells;
 *  B. one row per (client, pooled cell the hour is in): the values as arrays;
 *  C. each B row is copied to the three pooled cells it feeds (same day type, local hour ±1): one
 *     row per (client, pooled cell) with every sample of the cell, and the cell's own hours beside;
 *  D. one row per client: the first active hour, hence where the profile starts (the local day the
 *     client first appeared), the tool and server names with the hours they were used in;
 *  E. D's rows spread back to one row per (client, cell), all 48 cells present: median, MAD and
 *     q95 of the samples from the start on, with the hours before the start left out and the idle
 *     hours counted as zeros (they are not rows: a sorted sample is `zeros ++ sorted(values)`);
 *  F/G. one row per client again, the cells in order, written as a baselines row.
 * Quantiles follow simple-statistics' quantileSorted (what stats.ts uses: type 7), MAD is the median of the
 * absolute deviations, rounding is Math.round's (half up) to 4 decimals.
 */

/** The fragment a Quantile is computed on: a sorted array `x` preceded by `z` zeros, `n` long in all. */
interface Padded {
  get: (j: SqlFragment) => SqlFragment;
  n: SqlFragment;
}

/**
 * simple-statistics quantileSorted(p) for 0 < p < 1 over a padded sample (0 when empty): R's type 7,
 * index (n − 1)·p, linear between the neighbours, in the same floating-point operations.
 */
function quantile(s: Padded, p: number): SqlFragment {
  const idx = sql`(toFloat64(${s.n} - 1) * ${float(p)})`;
  const lo = s.get(sql`toUInt32(floor(${idx}))`);
  const hi = s.get(sql`toUInt32(ceil(${idx}))`);
  return sql`if(${s.n} = 0, 0.0,
    if(${idx} != floor(${idx}), ${lo} + (${idx} - floor(${idx})) * (${hi} - ${lo}),
      toFloat64(${s.get(sql`toUInt32(${idx})`)})))`;
}

/** `x` sorted ascending, after `z` zeros: element j (0-based). */
const zeroPadded = (x: SqlFragment, z: SqlFragment, n: SqlFragment): Padded => ({
  get: (j) => sql`if(${j} < ${z}, 0.0, arrayElement(${x}, toInt64(${j}) - ${z} + 1))`,
  n,
});

/**
 * The sorted absolute deviations from `med` of the padded sample: `d` (sorted deviations of the
 * values, `k` of them below `med`) with the `z` zeros' deviations (each `med`) between.
 */
const deviations = (
  d: SqlFragment,
  k: SqlFragment,
  z: SqlFragment,
  med: SqlFragment,
  n: SqlFragment,
): Padded => ({
  get: (j) =>
    sql`if(${j} < ${k}, arrayElement(${d}, toInt64(${j}) + 1), if(${j} < ${k} + ${z}, ${med}, arrayElement(${d}, toInt64(${j}) - ${z} + 1)))`,
  n,
});

/** Math.round(v * 1e4) / 1e4 (stats.ts `round`): half up, not ClickHouse round()'s half-even. */
const round4 = (v: SqlFragment) => sql`(floor(${v} * 10000 + 0.5) / 10000)`;

/** Column letters of level A for each metric (the merged, per-hour value). */
const LETTER: Record<Metric, string> = {
  calls: 'c',
  bytes: 'b',
  tools: 't',
  servers: 's',
  auth_failures: 'a',
};
const NAMES = new Set<string>();
const name = (s: string): SqlFragment => {
  NAMES.add(s);
  return ident(s, NAMES);
};

export interface BaselineSqlInput {
  /** Database identifier fragment (dbIdent). */
  db: SqlFragment;
  grid: Grid;
  asOf: number;
  windowDays: number;
  learningActiveDays: number;
  computedAt: number;
  /** Restricts the clients (time-zone groups and chunks); true for all. */
  clientFilter: SqlFragment;
}

/** The grid's constant tables, as the statement uses them. */
function gridTables(grid: Grid) {
  const n = grid.hours;
  const idx = Array.from({ length: n }, (_, i) => i);
  const dateIds = new Map<string, number>();
  for (const d of grid.dates) if (!dateIds.has(d)) dateIds.set(d, dateIds.size);
  const did = grid.dates.map((d) => dateIds.get(d)!);
  const dateStart = grid.dates.map((d) => grid.dateStart.get(d)!);
  // How many samples a pooled cell (±1 h) and an activity cell (±2 h) hold from each possible start
  // (the first hour of a local date, or n when the client has no active hour): key cell*4096+start.
  const starts = [...new Set(dateStart)];
  const keys: number[] = [];
  const n1: number[] = [];
  const n2: number[] = [];
  for (let c = 0; c < POOLED_CELLS; c++)
    for (const s of starts) {
      keys.push(c * 4096 + s);
      n1.push(grid.pool1[c]!.filter((i) => i >= s).length);
      n2.push(grid.pool2[c]!.filter((i) => i >= s).length);
    }
  return {
    n,
    idx,
    pooled: [...grid.pooled],
    week: [...grid.week],
    did,
    dateStart,
    keys,
    n1,
    n2,
  };
}

/** Column names as fragments (the names are this module's own, never input). */
const cols = (...names: string[]): SqlFragment => join(names.map(name));

/** The INSERT … SELECT that writes the client rows of one time zone's clients (see the module). */
export function clientBaselinesInsert(input: BaselineSqlInput): SqlFragment {
  // Keys are cell * 4096 + start: the config allows windows of up to 90 days (2,160 hours).
  if (input.grid.hours >= 4096) throw new Error(`baseline window of ${input.grid.hours} hours: at most 4095`);
  const g = gridTables(input.grid);
  const { db } = input;
  const fromS = Math.floor(input.grid.from / 1000);
  const toS = fromS + (g.n * HOUR_MS) / 1000;
  // NOTE: every level lists its columns and computes from the level below only: 18.16 substitutes
  // an alias used in the same SELECT by its whole expression, and the quantiles nest deeply enough
  // for that to take minutes to analyse; and it does not find a column a lambda alone refers to
  // through `SELECT *`.
  const L = (m: Metric) => LETTER[m];
  const per = (f: (m: Metric) => string[]) => METRICS.flatMap(f);
  const letters = [...METRICS.map(L), 'e'];
  const nested = [...METRICS.map((m) => `p${L(m)}`), ...letters.map((l) => `c${l}`)];
  const clientCols = [
    'client_id',
    'seen',
    'first',
    'last',
    'cohort',
    'tnames',
    'tcounts',
    'snames',
    'scounts',
  ];

  // E0: one row per (client, cell): the samples from the start on, sorted; the cell's own hours.
  const e0 = per((m) => [`x_${m}`, `z_${m}`, `wv_${m}`]);
  const e0Exprs = METRICS.map((m) => {
    const x = name(`x_${m}`);
    return sql`
      arraySort(arrayFilter((v, i) -> i >= start, ${name(`p${L(m)}`)}, pix)) AS ${x},
      toInt64(n1) - length(${x}) AS ${name(`z_${m}`)},
      arrayMap(w -> arrayReduce('max', arrayFilter((v, i, wk) -> i >= start AND wk = w, ${name(`c${L(m)}`)}, cix, cwk)), wkeys) AS ${name(`wv_${m}`)}`;
  });
  const padded = (m: Metric) => zeroPadded(name(`x_${m}`), name(`z_${m}`), sql`n1`);
  // E1: medians and q95; E2: deviations; E3: MAD.
  const e1 = per((m) => [`med_${m}`, `q95_${m}`]);
  const e1Exprs = METRICS.map(
    (m) =>
      sql`${quantile(padded(m), 0.5)} AS ${name(`med_${m}`)}, ${quantile(padded(m), 0.95)} AS ${name(`q95_${m}`)}`,
  );
  const e2 = per((m) => [`d_${m}`, `k_${m}`]);
  const e2Exprs = METRICS.map(
    (m) => sql`arraySort(arrayMap(v -> abs(v - ${name(`med_${m}`)}), ${name(`x_${m}`)})) AS ${name(`d_${m}`)},
      arrayCount(v -> v < ${name(`med_${m}`)}, arraySort(arrayMap(v -> abs(v - ${name(`med_${m}`)}), ${name(`x_${m}`)}))) AS ${name(`k_${m}`)}`,
  );
  const e3Exprs = METRICS.map(
    (m) =>
      sql`${quantile(deviations(name(`d_${m}`), name(`k_${m}`), name(`z_${m}`), name(`med_${m}`), sql`n1`), 0.5)} AS ${name(`mad_${m}`)}`,
  );
  const cellCols = ['cell', 'wkeys', 'ac', 'n2', 'sh', 'am', 'ad'];

  // F: one row per client, cells gathered.
  const fExprs = METRICS.map(
    (m) => sql`
      groupArray(${name(`med_${m}`)}) AS ${name(`fmed_${m}`)},
      groupArray(${name(`mad_${m}`)}) AS ${name(`fmad_${m}`)},
      groupArray(${name(`q95_${m}`)}) AS ${name(`fq95_${m}`)},
      groupArrayArray(${name(`wv_${m}`)}) AS ${name(`fwv_${m}`)}`,
  );
  // G1: cells in order; G2: error-share median, activity around each cell; G3: the row.
  const byCell = (col: string) => sql`arraySort((v, c) -> c, ${name(col)}, fcells)`;
  const rounded = (arr: SqlFragment) => sql`arrayMap(v -> ${round4(sql`v`)}, ${arr})`;
  const g1Exprs = METRICS.map(
    (m) => sql`
      ${rounded(byCell(`fmed_${m}`))} AS ${name(`${m}_median`)},
      ${rounded(byCell(`fmad_${m}`))} AS ${name(`${m}_mad`)},
      ${rounded(byCell(`fq95_${m}`))} AS ${name(`${m}_q95`)},
      arraySort((v, w) -> w, ${name(`fwv_${m}`)}, fwk) AS ${name(`${m}_cell_max`)}`,
  );
  const profile = per((m) => [`${m}_median`, `${m}_mad`, `${m}_q95`, `${m}_cell_max`]);
  const g1 = [
    ...clientCols,
    ...profile,
    'auth_max',
    'active_hours',
    'active_days',
    'es',
    'ac_sorted',
    'n2_sorted',
  ];
  const esN = sql`length(es)`;
  // Active hours around each cell (±2 h, same day type): the 48 cells rotated within each day type.
  const rotated = (off: number) => {
    const half = (at: number) => {
      const k = (off + 24) % 24;
      return sql`arrayConcat(arraySlice(ac_sorted, ${at + k + 1}, ${24 - k}), arraySlice(ac_sorted, ${at + 1}, ${k}))`;
    };
    return sql`arrayConcat(${half(0)}, ${half(24)})`;
  };
  const g2 = [...g1.filter((c) => c !== 'ac_sorted'), 'es_med', 'active2'];
  const g3 = [...g2, 'es_dev'];

  // Names with how many hours used each: `all` holds a name once per hour; sorted, the last of each
  // run of equal names has its count as its occurrence number (no lambda captures `all`: see NOTE).
  const counted = (all: string, names: string, counts: string) => {
    const sorted = sql`arraySort(${name(all)})`;
    const last = sql`arrayMap((x, y) -> x != y, ${sorted}, arrayPopFront(arrayPushBack(${sorted}, '')))`;
    return sql`arrayFilter((x, l) -> l, ${sorted}, ${last}) AS ${name(names)},
      arrayMap(n -> toUInt32(n), arrayFilter((n, l) -> l, arrayEnumerateUniq(${sorted}), ${last})) AS ${name(counts)}`;
  };

  const version = versionOf(input.asOf);
  const columns = join([
    sql`client_id, as_of, version, kind, computed_at, state, window_days, active_days, active_hours,
      first_seen, last_seen, time_zone, cohort, members`,
    cols(...profile),
    sql`active_share, error_share_median, error_share_mad, error_share_q95, error_hours,
      auth_failures_hour_max, tools, tool_counts, servers, server_counts`,
  ]);

  return sql`
INSERT INTO ${db}.baselines (${columns})
SELECT
  client_id, toDateTime(${Math.floor(input.asOf / 1000)}, 'UTC'), ${version}, 'client',
  toDateTime(${Math.floor(input.computedAt / 1000)}, 'UTC'),
  if(active_days >= ${input.learningActiveDays}, 'active', 'learning'), ${input.windowDays},
  active_days, active_hours,
  toDateTime(if(seen, ${fromS} + toUInt32(first) * 3600, 0), 'UTC'),
  toDateTime(if(seen, ${fromS} + toUInt32(last) * 3600, 0), 'UTC'),
  ${input.grid.tz}, cohort, 1,
  ${cols(...profile)},
  arrayMap((act, tot) -> if(tot = 0, 0.0, ${round4(sql`(act / tot)`)}), active2, n2_sorted),
  ${round4(sql`es_med`)},
  ${round4(quantile(deviations(sql`es_dev`, sql`0`, sql`0`, sql`es_med`, esN), 0.5))},
  ${round4(quantile(zeroPadded(sql`es`, sql`0`, esN), 0.95))}, ${esN},
  auth_max, tnames, tcounts, snames, scounts
FROM (
  SELECT ${cols(...g3.filter((c) => c !== 'es_dev'))}, arraySort(arrayMap(v -> abs(v - es_med), es)) AS es_dev
  FROM (
    SELECT ${cols(...g1)},
      ${quantile(zeroPadded(sql`es`, sql`0`, esN), 0.5)} AS es_med,
      arrayMap((a, b, c, d, e) -> a + b + c + d + e, ${rotated(-2)}, ${rotated(-1)}, ac_sorted, ${rotated(1)}, ${rotated(2)}) AS active2
    FROM (
      SELECT ${cols(...clientCols)}, ${join(g1Exprs)},
        auth_max, active_hours, active_days,
        arraySort(shares) AS es,
        arraySort((v, c) -> c, fac, fcells) AS ac_sorted,
        arraySort((v, c) -> c, fn2, fcells) AS n2_sorted
      FROM (
        -- F: one row per client, cells gathered
        SELECT client_id,
          any(seen) AS seen, any(first) AS first, any(last) AS last, any(cohort) AS cohort,
          any(tnames) AS tnames, any(tcounts) AS tcounts, any(snames) AS snames, any(scounts) AS scounts,
          ${join(fExprs)},
          groupArray(cell) AS fcells,
          groupArrayArray(wkeys) AS fwk,
          groupArray(ac) AS fac, groupArray(n2) AS fn2,
          groupArrayArray(sh) AS shares,
          max(am) AS auth_max, sum(ac) AS active_hours, length(groupUniqArrayArray(ad)) AS active_days
        FROM (
          SELECT ${cols(...clientCols, ...cellCols, ...e1, ...e2.filter((c) => c.startsWith('k_') === false), ...per((m) => [`wv_${m}`]))}, ${join(e3Exprs)}
          FROM (
            SELECT ${cols(...clientCols, ...cellCols, 'n1', ...e0, ...e1)}, ${join(e2Exprs)}
            FROM (
              SELECT ${cols(...clientCols, ...cellCols, 'n1', ...e0)}, ${join(e1Exprs)}
              FROM (
                -- E0: one row per (client, pooled cell), every cell present
                SELECT ${cols(...clientCols, 'cell', 'start')},
                  transform(toUInt32(cell) * 4096 + toUInt32(start), ${g.keys}, ${g.n1}, 0) AS n1,
                  transform(toUInt32(cell) * 4096 + toUInt32(start), ${g.keys}, ${g.n2}, 0) AS n2,
                  arrayMap(dw -> toUInt16((dw - 1) * 24 + cell % 24), if(cell < 24, [1, 2, 3, 4, 5], [6, 7])) AS wkeys,
                  ${join(e0Exprs)},
                  arrayCount((v, i) -> v > 0 AND i >= start, cc, cix) AS ac,
                  arrayFilter((r, v, i) -> v >= ${ERROR_SHARE_MIN_CALLS} AND i >= start, arrayMap((er, v) -> er / v, ce, cc), cc, cix) AS sh,
                  arrayReduce('max', arrayFilter((v, i) -> i >= start, ca, cix)) AS am,
                  arrayFilter((x, v, i) -> v > 0 AND i >= start, cdid, cc, cix) AS ad
                FROM (
                  -- D: one row per client; the cells no hour reaches are added empty
                  SELECT client_id, seen, first, last,
                    if(seen, transform(first, ${g.idx}, ${g.dateStart}, ${g.n}), ${g.n}) AS start,
                    if(length(snames) = 0, 'none',
                       substring(lower(hex(SHA256(arrayStringConcat(arraySort(snames), ${'\n'})))), 1, 12)) AS cohort,
                    ${counted('tall', 'tnames', 'tcounts')},
                    ${counted('sall', 'snames', 'scounts')},
                    arrayConcat(cells0, arrayFilter(x -> NOT has(cells0, x), range(48))) AS cells,
                    pixs, cixs, cwks, cdids, ${cols(...nested.map((c) => `${c}s`))}
                  FROM (
                    SELECT client_id,
                      groupArray(cell) AS cells0,
                      arrayResize(groupArray(pix), 48) AS pixs,
                      arrayResize(groupArray(cix), 48) AS cixs,
                      arrayResize(groupArray(cwk), 48) AS cwks,
                      arrayResize(groupArray(cdid), 48) AS cdids,
                      ${join(nested.map((c) => sql`arrayResize(groupArray(${name(c)}), 48) AS ${name(`${c}s`)}`))},
                      sum(cna) > 0 AS seen, minIf(cfi, cna > 0) AS first, maxIf(cli, cna > 0) AS last,
                      groupArrayArray(ctn) AS tall, groupArrayArray(csn) AS sall
                    FROM (
                      -- C: one row per (client, pooled cell): its samples (p*) and its own hours (c*)
                      SELECT client_id, toUInt8(intDiv(p, 24) * 24 + (p % 24 + d + 23) % 24) AS cell,
                        groupArrayArray(ix) AS pix,
                        ${join(METRICS.map((m) => sql`groupArrayArray(${name(`v${L(m)}`)}) AS ${name(`p${L(m)}`)}`))},
                        anyIf(ix, d = 1) AS cix, anyIf(vwk, d = 1) AS cwk, anyIf(vdid, d = 1) AS cdid,
                        ${join(letters.map((l) => sql`anyIf(${name(`v${l}`)}, d = 1) AS ${name(`c${l}`)}`))},
                        minIf(fi, d = 1 AND na > 0) AS cfi, maxIf(li, d = 1 AND na > 0) AS cli, sumIf(na, d = 1) AS cna,
                        anyIf(tn, d = 1) AS ctn, anyIf(sn, d = 1) AS csn
                      FROM (
                        -- B: one row per (client, pooled cell of the hour)
                        SELECT client_id, p,
                          groupArray(i) AS ix, groupArray(wk) AS vwk, groupArray(did) AS vdid,
                          ${join(letters.map((l) => sql`groupArray(${name(l)}) AS ${name(`v${l}`)}`))},
                          minIf(i, act) AS fi, maxIf(i, act) AS li, countIf(act) AS na,
                          groupArrayArray(ts) AS tn, groupArrayArray(ss) AS sn
                        FROM (
                          -- A: one row per (client, hour)
                          SELECT client_id, i,
                            transform(i, ${g.idx}, ${g.pooled}, 0) AS p,
                            transform(i, ${g.idx}, ${g.week}, 0) AS wk,
                            transform(i, ${g.idx}, ${g.did}, 0) AS did,
                            toFloat64(if(c0 > a0, c0 - a0, 0)) AS c, toFloat64(b0) AS b, toFloat64(t0) AS t,
                            toFloat64(s0) AS s, toFloat64(a0) AS a, toFloat64(e0) AS e,
                            c0 > 0 OR a0 > 0 AS act, ts, ss
                          FROM (
                            SELECT client_id, toUInt16(intDiv(toUInt32(hour) - ${fromS}, 3600)) AS i,
                              uniqExactMerge(calls) AS c0, uniqExactIfMerge(errors) AS e0,
                              uniqExactIfMerge(auth_failures) AS a0, uniqExactMerge(tools) AS t0,
                              uniqExactMerge(servers) AS s0, sumMerge(request_bytes) + sumMerge(response_bytes) AS b0,
                              groupUniqArrayMerge(tool_set) AS ts, groupUniqArrayMerge(server_set) AS ss
                            FROM ${db}.events_hourly
                            WHERE hour >= toDateTime(${fromS}, 'UTC') AND hour < toDateTime(${toS}, 'UTC')
                              AND ${input.clientFilter}
                            GROUP BY client_id, hour
                          )
                        )
                        GROUP BY client_id, p
                      )
                      ARRAY JOIN [0, 1, 2] AS d
                      GROUP BY client_id, cell
                    )
                    GROUP BY client_id
                  )
                )
                ARRAY JOIN cells AS cell, pixs AS pix, cixs AS cix, cwks AS cwk, cdids AS cdid,
                  ${join(nested.map((c) => sql`${name(`${c}s`)} AS ${name(c)}`))}
              )
            )
          )
        )
        GROUP BY client_id
      )
    )
  )
)`;
}
