// Output of `npm run bench`: the text table, the JSON file and the SVG chart.

export interface Row {
  section: string;
  name: string;
  value: number;
  unit: string;
  /** Same-run baselines, printed next to the figure. */
  baselines?: { name: string; value: number; unit: string }[];
  note?: string;
}

export interface Target {
  id: number;
  what: string;
  ratio: number;
  /** "<=" or ">=" */
  op: "<=" | ">=";
  limit: number;
  detail: string;
  pass: boolean | null;
}

export function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "n/a";
  if (v !== 0 && Math.abs(v) < 0.1) return `${v.toPrecision(2)} ${unit}`;
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${unit}`;
}

export function table(rows: readonly Row[]): string {
  const lines: string[] = [];
  let section = "";
  const w = Math.max(...rows.map((r) => r.name.length), 20);
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section;
      lines.push("", `== ${section}`);
    }
    const base = (r.baselines ?? []).map((b) => `${b.name} ${fmt(b.value, b.unit)}`).join("; ");
    lines.push(`  ${r.name.padEnd(w)}  ${fmt(r.value, r.unit).padStart(14)}${base ? `   | ${base}` : ""}${r.note ? `   (${r.note})` : ""}`);
  }
  return lines.join("\n");
}

export function targetLines(targets: readonly Target[]): string {
  return targets
    .map((t) => {
      const verdict = t.pass === null ? "N/A " : t.pass ? "PASS" : "MISS";
      return `  ${verdict} ${t.id}. ${t.what}: ${Number.isFinite(t.ratio) ? t.ratio.toFixed(3) : "n/a"} ${t.op} ${t.limit}  (${t.detail})`;
    })
    .join("\n");
}

export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
}

/** A log-x line chart of throughput (MB/s) against payload size (bytes), as plain SVG. */
export function svgChart(title: string, series: readonly Series[]): string {
  const W = 640;
  const H = 400;
  const L = 70;
  const R = 20;
  const T = 40;
  const B = 60;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y) && p.x > 0);
  const xmin = Math.min(...all.map((p) => p.x));
  const xmax = Math.max(...all.map((p) => p.x));
  const ymax = Math.max(...all.map((p) => p.y)) * 1.1 || 1;
  const lx = (x: number) => L + ((Math.log2(x) - Math.log2(xmin)) / Math.max(1e-9, Math.log2(xmax) - Math.log2(xmin))) * (W - L - R);
  const ly = (y: number) => H - B - (y / ymax) * (H - T - B);
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 15}" text-anchor="middle">payload bytes per request (log scale)</text>`,
    `<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + H - B) / 2})">MB/s</text>`,
  ];
  for (let x = 2 ** Math.ceil(Math.log2(xmin)); x <= xmax; x *= 4) {
    out.push(`<line x1="${lx(x)}" y1="${H - B}" x2="${lx(x)}" y2="${H - B + 5}" stroke="black"/>`);
    out.push(`<text x="${lx(x)}" y="${H - B + 18}" text-anchor="middle">${x >= 1024 ? `${x / 1024}K` : x}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const y = (ymax / 5) * i;
    out.push(`<line x1="${L - 5}" y1="${ly(y)}" x2="${W - R}" y2="${ly(y)}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 8}" y="${ly(y) + 4}" text-anchor="end">${y.toFixed(y >= 10 ? 0 : 1)}</text>`);
  }
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.y));
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${lx(p.x).toFixed(1)},${ly(p.y).toFixed(1)}`).join(" ")}"/>`,
    );
    for (const p of pts) out.push(`<circle cx="${lx(p.x).toFixed(1)}" cy="${ly(p.y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    out.push(`<rect x="${L + 10}" y="${T + 4 + i * 16}" width="12" height="3" fill="${s.color}"/>`);
    out.push(`<text x="${L + 28}" y="${T + 9 + i * 16}">${esc(s.name)}</text>`);
  });
  out.push("</svg>", "");
  return out.join("\n");
}
