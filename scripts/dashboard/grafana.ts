// Builders for the parts of a Grafana dashboard model (JSON, schemaVersion 39: Grafana 10.x and 11.x) that the
// wsgate dashboard uses. Panels are declared row by row with a width; layout() assigns ids and grid positions, so
// the panel source reads as a list and never carries coordinates.

/** Every query goes to the data source chosen in the `datasource` variable. */
export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;

export const SCHEMA_VERSION = 39;

export interface Query {
  readonly expr: string;
  /** Grafana legend template, e.g. `{{route}} {{layer}}`. */
  readonly legend?: string;
  /** An instant query (stat, bar gauge) instead of a range query (time series). Default false. */
  readonly instant?: boolean;
}

export type Unit =
  | 'short'
  | 'none'
  | 'ops' // per second
  | 'reqps'
  | 'Bps' // bytes per second
  | 'bytes'
  | 's'
  | 'percentunit'
  | 'dateTimeFromNow';

export interface PanelSpec {
  readonly kind: 'timeseries' | 'stat' | 'bargauge';
  readonly title: string;
  /** Shown in the panel's (i) tooltip: what the panel answers, and how to read it. */
  readonly description: string;
  readonly queries: readonly Query[];
  readonly unit: Unit;
  /** Grid columns out of 24. */
  readonly width: number;
  /** Grid rows (default 8 for time series, 4 for stats). */
  readonly height?: number;
  /** Threshold steps, lowest first (the first has no value): colours for stats and bar gauges. */
  readonly thresholds?: readonly { readonly color: string; readonly value: number | null }[];
  /** Time series: stack the series (default false). */
  readonly stack?: boolean;
}

export interface RowSpec {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

type Json = Record<string, unknown>;

const DEFAULT_THRESHOLDS = [{ color: 'green', value: null }] as const;

function target(q: Query, i: number): Json {
  return {
    datasource: DATASOURCE,
    editorMode: 'code',
    expr: q.expr,
    instant: q.instant === true,
    legendFormat: q.legend ?? '__auto',
    range: q.instant !== true,
    refId: String.fromCharCode(65 + i),
  };
}

function panel(p: PanelSpec, id: number, x: number, y: number, h: number): Json {
  const thresholds = { mode: 'absolute', steps: p.thresholds ?? DEFAULT_THRESHOLDS };
  const common = {
    datasource: DATASOURCE,
    description: p.description,
    gridPos: { h, w: p.width, x, y },
    id,
    targets: p.queries.map(target),
    title: p.title,
    type: p.kind,
  };
  switch (p.kind) {
    case 'timeseries':
      return {
        ...common,
        fieldConfig: {
          defaults: {
            color: { mode: 'palette-classic' },
            custom: {
              drawStyle: 'line',
              fillOpacity: p.stack === true ? 30 : 10,
              lineWidth: 1,
              showPoints: 'never',
              spanNulls: false,
              stacking: { group: 'A', mode: p.stack === true ? 'normal' : 'none' },
            },
            min: 0,
            thresholds,
            unit: p.unit,
          },
          overrides: [],
        },
        options: {
          legend: { calcs: ['lastNotNull', 'max'], displayMode: 'table', placement: 'bottom', showLegend: true },
          tooltip: { mode: 'multi', sort: 'desc' },
        },
      };
    case 'stat':
      return {
        ...common,
        fieldConfig: { defaults: { color: { mode: 'thresholds' }, thresholds, unit: p.unit }, overrides: [] },
        options: {
          colorMode: 'value',
          graphMode: 'area',
          justifyMode: 'auto',
          orientation: 'auto',
          reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
          textMode: 'auto',
        },
      };
    case 'bargauge':
      return {
        ...common,
        fieldConfig: { defaults: { color: { mode: 'thresholds' }, min: 0, thresholds, unit: p.unit }, overrides: [] },
        options: {
          displayMode: 'basic',
          orientation: 'horizontal',
          reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
          showUnfilled: true,
        },
      };
  }
}

/**
 * Rows and their panels to Grafana's flat panel list: a row header (type `row`, height 1), then its panels packed
 * left to right, wrapping at 24 columns. Ids count up from 1 in reading order.
 */
export function layout(rows: readonly RowSpec[]): Json[] {
  const out: Json[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    out.push({ collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, id: id++, panels: [], title: row.title, type: 'row' });
    y += 1;
    let x = 0;
    let lineHeight = 0;
    for (const p of row.panels) {
      const h = p.height ?? (p.kind === 'timeseries' ? 8 : 4);
      if (x + p.width > 24) {
        y += lineHeight;
        x = 0;
        lineHeight = 0;
      }
      out.push(panel(p, id++, x, y, h));
      x += p.width;
      lineHeight = Math.max(lineHeight, h);
    }
    y += lineHeight;
  }
  return out;
}

/** The `datasource` variable: which Prometheus to query (every panel uses it). */
export function datasourceVariable(): Json {
  return {
    current: {},
    hide: 0,
    includeAll: false,
    label: 'Data source',
    multi: false,
    name: 'datasource',
    options: [],
    query: 'prometheus',
    refresh: 1,
    regex: '',
    type: 'datasource',
  };
}

/** A multi-value query variable over a label's values, `All` meaning the regex `.*`. */
export function labelVariable(name: string, label: string, metric: string): Json {
  const query = `label_values(${metric}, ${name})`;
  return {
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    datasource: DATASOURCE,
    definition: query,
    hide: 0,
    includeAll: true,
    label,
    multi: true,
    name,
    options: [],
    query: { qryType: 1, query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    refresh: 2,
    regex: '',
    sort: 1,
    type: 'query',
  };
}
