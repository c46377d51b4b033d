/**
 * A header: cards in file order, duplicates kept, with a keyword index built on
 * first lookup. CONTINUE cards are folded into the long string they extend, so
 * `cards` counts logical cards as astropy does.
 */
import type { Card } from "./card.js";
import { type FitsValue } from "./card.js";

export class Header {
  readonly cards: Card[] = [];
  private index: Map<string, Card[]> | undefined;

  add(card: Card): void {
    this.cards.push(card);
    this.index = undefined;
  }

  get length(): number {
    return this.cards.length;
  }

  /** The first card with this keyword (case-insensitive). */
  card(keyword: string): Card | undefined {
    return this.lookup().get(keyword.toUpperCase())?.[0];
  }

  /** Every card with this keyword, in file order. */
  all(keyword: string): Card[] {
    return this.lookup().get(keyword.toUpperCase()) ?? [];
  }

  has(keyword: string): boolean {
    return this.lookup().has(keyword.toUpperCase());
  }

  /** The value of the first card with this keyword; undefined if absent, null if the value is undefined. */
  get(keyword: string): FitsValue | undefined {
    return this.card(keyword)?.value;
  }

  /** A string value, or undefined when absent or not a string. */
  string(keyword: string): string | undefined {
    const value = this.get(keyword);
    return typeof value === "string" ? value : undefined;
  }

  /** A finite numeric value (int or float), or undefined. */
  number(keyword: string): number | undefined {
    const value = this.get(keyword);
    if (typeof value === "number" && Number.isFinite(value)) {
      return value;
    }
    return typeof value === "bigint" ? Number(value) : undefined;
  }

  private lookup(): Map<string, Card[]> {
    if (this.index === undefined) {
      this.index = new Map();
      for (const card of this.cards) {
        const list = this.index.get(card.keyword);
        if (list === undefined) {
          this.index.set(card.keyword, [card]);
        } else {
          list.push(card);
        }
      }
    }
    return this.index;
  }
}
