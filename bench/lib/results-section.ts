/**
 * Each stand-alone bench (backup, chaos, minting-scale, soak) owns one section of bench/RESULTS.md
 * between its own `<!-- name:begin -->` and `<!-- name:end -->` markers: a run replaces its section
 * and leaves the rest of the file as it was, or appends the section when the file has none yet.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** Writes `section` (which starts with `begin` and ends with `end`) into `file` in place of the previous one. */
export function writeResultsSection(file: string, begin: string, end: string, section: string): void {
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const b = text.indexOf(begin);
  const e = text.indexOf(end);
  if (b >= 0 && e > b) text = text.slice(0, b) + section + text.slice(e + end.length);
  else text = `${text.replace(/\s*$/, '')}\n\n${section}\n`;
  writeFileSync(file, text.replace(/^\n+/, '')); // a new file starts with its section
}
