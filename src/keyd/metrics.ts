/** A tiny metrics registry rendered as Prometheus text exposition (version 0.0.4). */
type Labels = Record<string, string>;

interface Family {
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, { labels: Labels; value: number | (() => number) }>;
}

function labelKey(l: Labels): string {
  return Object.keys(l).sort().map((k) => `${k}=${l[k]}`).join(',');
}

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export class Metrics {
  private readonly families = new Map<string, Family>();

  constructor(private readonly base: Labels = {}) {}

  private family(name: string, type: Family['type'], help: string): Family {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = { help, type, values: new Map() }));
    return f;
  }

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    const f = this.family(name, 'counter', help);
    const k = labelKey(labels);
    const cur = f.values.get(k);
    const v = cur && typeof cur.value === 'number' ? cur.value : 0;
    f.values.set(k, { labels, value: v + by });
  }

  /** A gauge read when metrics are rendered. */
  gauge(name: string, help: string, read: () => number, labels: Labels = {}): void {
    this.family(name, 'gauge', help).values.set(labelKey(labels), { labels, value: read });
  }

  /** A counter whose value lives elsewhere (read at render time). */
  counterFrom(name: string, help: string, read: () => number, labels: Labels = {}): void {
    this.family(name, 'counter', help).values.set(labelKey(labels), { labels, value: read });
  }

  value(name: string, labels: Labels = {}): number {
    const v = this.families.get(name)?.values.get(labelKey(labels))?.value;
    return typeof v === 'function' ? v() : (v ?? 0);
  }

  render(extra: (m: Metrics) => void = () => {}): string {
    extra(this);
    const lines: string[] = [];
    for (const [name, f] of this.families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const { labels, value } of f.values.values()) {
        const all = { ...this.base, ...labels };
        const ls = Object.entries(all).map(([k, v]) => `${k}="${escape(v)}"`).join(',');
        lines.push(`${name}${ls ? `{${ls}}` : ''} ${typeof value === 'function' ? value() : value}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}
