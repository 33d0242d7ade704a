import type { Activity } from 'botbuilder';
import type { ReplyOutput } from '../../../src/core/index.js';
import { ADAPTIVE_CARD } from '../types.js';

/** The building blocks of what the Teams adapter sends: activities, cards, and their size budget. */

/**
 * `answer`: the answer's one message (its text, charts, file links and "Show the code"); `text`: a further
 * part of a text too long for one message; `extras`: the charts, links and code of such an answer, in one card;
 * `files`: a file consent card (personal chat: one per file); `notices`: files that could not be offered.
 */
export type OutboundPart = 'answer' | 'text' | 'extras' | 'files' | 'notices';

export interface OutboundMessage {
  part: OutboundPart;
  activity: Partial<Activity>;
  /** A smaller alternative when Teams still refuses this one (charts by URL instead of inline). */
  fallback?: () => Promise<Partial<Activity>>;
  /** Told the new activity's id once Teams took it (a file consent card keeps it, to update the card). */
  sent?: (activityId: string | undefined) => Promise<void>;
}

export interface RenderOptions {
  maxMessageBytes: number;
  /** Keeps a file behind a signed link (streamed, never whole in memory) and returns its URL and size. */
  host(file: ReplyOutput): Promise<{ url: string; size: number }>;
  /** One message per file (a file consent card in personal chat) instead of one message of links. */
  offer?(file: ReplyOutput): Promise<OutboundMessage>;
}

/**
 * One message of the reply, identified for the delivery ledger, rendered only when it is sent: the text goes
 * out before any chart or file is read from the engine, and a part an earlier attempt posted is never read.
 * `render` resolves to undefined when there is nothing to send after all.
 */
export interface PlannedPart {
  id: string;
  part: OutboundPart;
  render(): Promise<OutboundMessage | undefined>;
}

const CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json';
/** Envelope (ids, conversation, recipient…) the SDK adds to each activity, kept out of the budget. */
export const ENVELOPE_BYTES = 2048;

export const sizeOf = (json: unknown): number => Buffer.byteLength(JSON.stringify(json), 'utf8');

export function card(body: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'AdaptiveCard', $schema: CARD_SCHEMA, version: '1.5', body, msteams: { width: 'Full' }, ...extra };
}

export function cardActivity(content: Record<string, unknown>, summary: string): Partial<Activity> {
  return { type: 'message', summary, attachments: [{ contentType: ADAPTIVE_CARD, content }] };
}

export function textActivity(markdown: string): Partial<Activity> {
  return { type: 'message', text: markdown, textFormat: 'markdown' };
}

