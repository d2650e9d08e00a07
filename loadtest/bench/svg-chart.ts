// Line charts as standalone SVG text. Hand-written because the project's dependencies hold no
// charting or image library, and a chart of a few series over time needs only scaled
// polylines, axes and labels; SVG keeps it diffable in git and readable on GitHub.

export interface ChartSeries {
  label: string;
  /** CSS colour of the line and its legend entry. */
  color: string;
  /** [x, y] points; points with a non-finite y are left out, which breaks the line there. */
  points: ReadonlyArray<readonly [number, number]>;
  /** Dashed line, for a reference or a secondary series. */
  dashed?: boolean;
}

export interface ChartPanel {
  title: string;
  yLabel: string;
  series: readonly ChartSeries[];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  panels: readonly ChartPanel[];
  /** Text under the title, such as the machine and the command. */
  subtitle?: string;
  width?: number;
  panelHeight?: number;
}

const MARGIN = { left: 70, right: 20, top: 30, bottom: 40 };
const HEADER_HEIGHT = 50;
const TICKS = 5;

/** Renders the panels stacked vertically on a shared x axis and returns the SVG document. */
export function renderLineChart(options: ChartOptions): string {
  const width = options.width ?? 900;
  const panelHeight = options.panelHeight ?? 260;
  const height = HEADER_HEIGHT + options.panels.length * panelHeight;
  const allX = options.panels.flatMap((panel) => panel.series.flatMap((series) => series.points.map(([x]) => x))).filter(Number.isFinite);
  const [xMin, xMax] = niceRange(allX.length > 0 ? Math.min(...allX) : 0, allX.length > 0 ? Math.max(...allX) : 1, true);

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];
  if (options.subtitle !== undefined) {
    parts.push(`<text x="${width / 2}" y="38" text-anchor="middle" fill="#555">${escapeXml(options.subtitle)}</text>`);
  }
  options.panels.forEach((panel, index) => {
    parts.push(renderPanel(panel, { top: HEADER_HEIGHT + index * panelHeight, width, height: panelHeight, xMin, xMax, xLabel: options.xLabel }));
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

interface PanelFrame {
  top: number;
  width: number;
  height: number;
  xMin: number;
  xMax: number;
  xLabel: string;
}

function renderPanel(panel: ChartPanel, frame: PanelFrame): string {
  const left = MARGIN.left;
  const right = frame.width - MARGIN.right;
  const top = frame.top + MARGIN.top;
  const bottom = frame.top + frame.height - MARGIN.bottom;
  const values = panel.series.flatMap((series) => series.points.map(([, y]) => y)).filter(Number.isFinite);
  const [yMin, yMax] = niceRange(values.length > 0 ? Math.min(0, ...values) : 0, values.length > 0 ? Math.max(...values) : 1, false);
  const scaleX = (x: number): number => left + ((x - frame.xMin) / (frame.xMax - frame.xMin)) * (right - left);
  const scaleY = (y: number): number => bottom - ((y - yMin) / (yMax - yMin)) * (bottom - top);

  const parts: string[] = [
    `<text x="${left}" y="${top - 10}" font-weight="bold">${escapeXml(panel.title)}</text>`,
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#999"/>`,
  ];
  for (let tick = 0; tick <= TICKS; tick++) {
    const yValue = yMin + ((yMax - yMin) * tick) / TICKS;
    const y = scaleY(yValue);
    parts.push(`<line x1="${left}" y1="${y.toFixed(1)}" x2="${right}" y2="${y.toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${formatTick(yValue)}</text>`);
    const xValue = frame.xMin + ((frame.xMax - frame.xMin) * tick) / TICKS;
    const x = scaleX(xValue);
    parts.push(`<text x="${x.toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${formatTick(xValue)}</text>`);
  }
  parts.push(`<text x="${(left + right) / 2}" y="${bottom + 32}" text-anchor="middle">${escapeXml(frame.xLabel)}</text>`);
  parts.push(
    `<text x="16" y="${(top + bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(top + bottom) / 2})">${escapeXml(panel.yLabel)}</text>`,
  );

  panel.series.forEach((series, index) => {
    for (const segment of finiteSegments(series.points)) {
      const path = segment.map(([x, y]) => `${scaleX(x).toFixed(1)},${scaleY(y).toFixed(1)}`).join(' ');
      const dash = series.dashed === true ? ' stroke-dasharray="6 4"' : '';
      parts.push(`<polyline points="${path}" fill="none" stroke="${series.color}" stroke-width="1.5"${dash}/>`);
    }
    const legendX = right - 200;
    const legendY = top + 14 + index * 16;
    parts.push(`<line x1="${legendX}" y1="${legendY - 4}" x2="${legendX + 20}" y2="${legendY - 4}" stroke="${series.color}" stroke-width="2"/>`);
    parts.push(`<text x="${legendX + 26}" y="${legendY}">${escapeXml(series.label)}</text>`);
  });
  return parts.join('\n');
}

/** Splits points into runs of finite values, so a missing sample leaves a gap in the line. */
export function finiteSegments(points: ReadonlyArray<readonly [number, number]>): Array<Array<readonly [number, number]>> {
  const segments: Array<Array<readonly [number, number]>> = [];
  let current: Array<readonly [number, number]> = [];
  for (const point of points) {
    if (Number.isFinite(point[0]) && Number.isFinite(point[1])) {
      current.push(point);
      continue;
    }
    if (current.length > 0) segments.push(current);
    current = [];
  }
  if (current.length > 0) segments.push(current);
  return segments;
}

/** Widens [min, max] to round numbers; the x axis keeps its minimum, the y axis leaves headroom. */
export function niceRange(min: number, max: number, exact: boolean): [number, number] {
  if (!(max > min)) return [min, min + 1];
  if (exact) return [min, max];
  const span = max - min;
  const step = 10 ** Math.floor(Math.log10(span / TICKS));
  const niceStep = [1, 2, 2.5, 5, 10].map((factor) => factor * step).find((candidate) => span / candidate <= TICKS) ?? step * 10;
  return [Math.floor(min / niceStep) * niceStep, Math.ceil((max * 1.05) / niceStep) * niceStep];
}

function formatTick(value: number): string {
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
