// tokenizer: character level, plus the R1 template's four tags and an end token as single tokens, so
// the model spends one step (not seven) on `<think>` and the format is one decision, not a spelling.
// The vocabulary is fixed (32 ids) and the same for every task: a checkpoint of one task can be read
// by the code of another.

/** Special tokens, ids 0..5. */
export const PAD = 0;
export const EOS = 1;
export const THINK = 2;
export const THINK_END = 3;
export const ANSWER = 4;
export const ANSWER_END = 5;

const SPECIALS = ['<pad>', '<eos>', '<think>', '</think>', '<answer>', '</answer>'] as const;
/** Characters, ids 6.. in this order. */
const CHARS = '0123456789+-*/()=, :';

/** Vocabulary size (rounded up to 32; the ids past the characters never occur). */
export const VOCAB_SIZE = 32;

const CHAR_ID = new Map<string, number>([...CHARS].map((c, i) => [c, SPECIALS.length + i]));

/** Text -> ids. Tags (`<think>`, `</answer>`, …) become one token each; any other character must be in the vocabulary. */
export function encode(text: string): number[] {
  const ids: number[] = [];
  let i = 0;
  outer: while (i < text.length) {
    if (text[i] === '<') {
      for (let s = 0; s < SPECIALS.length; s++) {
        if (text.startsWith(SPECIALS[s]!, i)) {
          ids.push(s);
          i += SPECIALS[s]!.length;
          continue outer;
        }
      }
    }
    const id = CHAR_ID.get(text[i]!);
    if (id === undefined) throw new Error(`tokenizer: character ${JSON.stringify(text[i])} at ${i} of ${JSON.stringify(text)} is not in the vocabulary`);
    ids.push(id);
    i++;
  }
  return ids;
}

/** Ids -> text; special tokens are written as their tags (`<eos>`, `<pad>` included). */
export function decode(ids: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < ids.length; i++) s += tokenText(ids[i]!);
  return s;
}

/** One token's text. */
export function tokenText(id: number): string {
  if (id >= 0 && id < SPECIALS.length) return SPECIALS[id]!;
  const c = CHARS[id - SPECIALS.length];
  return c ?? `<unk${id}>`;
}
