/** Line numbers as ranges, for reports: `120-124, 130`. */

export type LineRange = [first: number, last: number];

/** Ascending line numbers as runs of consecutive lines. */
export function toRanges(lines: readonly number[]): LineRange[] {
  const out: LineRange[] = [];
  for (const l of lines) {
    const last = out[out.length - 1];
    if (last && l === last[1] + 1) last[1] = l;
    else out.push([l, l]);
  }
  return out;
}

export const rangeText = ([a, b]: LineRange): string => (a === b ? `${a}` : `${a}-${b}`);

/** `120-124, 130`, cut after `max` ranges with how many more there are. */
export function rangesText(ranges: readonly LineRange[], max = 12): string {
  const shown = ranges.slice(0, max).map(rangeText).join(', ');
  return ranges.length > max ? `${shown} and ${ranges.length - max} more ranges` : shown;
}
