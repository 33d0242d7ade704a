import { stripVTControlCharacters } from 'node:util';

// C0 controls but tab and newline, DEL, and C1 controls (U+0080–U+009F; U+009B alone starts a sequence).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Text that came from the model, a file or a file name, made safe to print: terminal escape sequences
 * (colours, cursor moves, window titles, hyperlinks) and every other control character but newline and tab
 * are removed, so what is printed can neither restyle nor rewrite the terminal.
 */
export function printable(text: string): string {
  return stripVTControlCharacters(text).replace(CONTROLS, '');
}

/** Like `printable`, on one line: a name or a message shown inside a sentence. */
export function printableLine(text: string): string {
  return printable(text).replace(/\s+/g, ' ').trim();
}
