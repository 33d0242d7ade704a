import { randomUUID } from 'node:crypto';
import type { Activity } from 'botbuilder';
import type { Logger } from 'pino';
import { keys, type Store } from '../../../src/core/index.js';
import type { TurnIO } from '../render/progress.js';
import { checkTenant } from '../receive.js';
import type { ReplyOutput } from '../../../src/core/index.js';
import { type OutboundMessage, textActivity } from '../render/activity.js';
import { fileLinkLine } from '../render/outputs.js';
import type { FileHost, HostedFile } from './signed-urls.js';
import { FILE_CONSENT_CARD, FILE_CONSENT_INVOKE, FILE_INFO_CARD, type FileConsentResponse, type FileUploadInfo } from '../types.js';
import { type UploadOptions, UploadError, uploadToSession } from './upload.js';
import { checkUrl, type UrlPolicy } from '../auth/urls.js';

/**
 * Generated files in personal chat, offered with Teams' file consent card ("Send and receive files using
 * bot", learn.microsoft.com, bots-filesv4):
 *  1. the bot posts a `file.consent` card; the bytes stay in the Store (the signed-link storage, same TTL)
 *     and the card's accept/decline context carries only a random offer id;
 *  2. Teams sends `fileConsent/invoke` with `value.action` accept (plus an OneDrive `uploadInfo`) or decline;
 *  3. accept: PUT the bytes to `uploadInfo.uploadUrl`, post a `file.info` card, turn the consent card into
 *     "Uploaded …"; decline or failure: turn it into a note with the signed download link instead.
 * An invoke only settles an offer made in its own conversation, to its own user, once.
 */

/** What the Store keeps under `teams:offer:<id>`. */
interface StoredOffer {
  file: HostedFile;
  name: string;
  sizeInBytes: number;
  conversationId: string;
  /** The user's channel id (29:…), present on every Teams activity. */
  userId: string;
  /** The user's Azure AD object id, when Teams sent it. */
  aadObjectId?: string;
  /** The consent card's activity id, once Teams took it, to update the card. */
  activityId?: string;
}

export type ConsentDecision =
  | { kind: 'accept'; offerId: string; offer: StoredOffer; uploadInfo: FileUploadInfo | undefined }
  | { kind: 'decline'; offerId: string; offer: StoredOffer }
  | { kind: 'refuse'; reason: 'unknown' | 'expired' | 'not_yours'; action: 'accept' | 'decline' }
  | { kind: 'duplicate' };

/** How an invoke is answered over HTTP (the SDK's InvokeResponse: status, and no body for file consent). */
export type InvokeVerdict = { status: 200; decision: ConsentDecision } | { status: 400 | 501 };

/** Who an offer is made to: the conversation and the user (`activity.from`) of the turn. */
export interface OfferRecipient {
  conversationId: string;
  userId: string;
  aadObjectId?: string;
}

export interface FileOffers {
  /** Keeps the file and returns its consent card, or its signed link when it cannot be offered. */
  offer(file: ReplyOutput, to: OfferRecipient): Promise<OutboundMessage>;
  /** Checks an invoke against the stored offer and claims it; quick, so the invoke is answered at once. */
  decide(activity: Partial<Activity>, allowedTenants: string[]): Promise<InvokeVerdict>;
  /** The slow part: upload or decline, then the messages, on the invoke's conversation; `urls` vets the upload URL. */
  settle(decision: ConsentDecision, io: TurnIO, log: Logger, urls: UrlPolicy): Promise<void>;
}

export interface FileOffersOptions {
  store: Store;
  files: FileHost;
  now: () => number;
  logger: Logger;
  upload?: UploadOptions;
}

const OFFER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const OFFER_EXPIRED =
  '⚠️ That file offer has expired, so I no longer have the file. Ask me again and I will make it anew.';
export const OFFER_NOT_YOURS = '⚠️ That file was offered in another conversation, so I cannot send it here.';

export function createFileOffers(options: FileOffersOptions): FileOffers {
  const { store, files, now } = options;
  const remainingMs = (offer: StoredOffer) => Math.max(1000, offer.file.expiresAtMs - now());
  const link = (offer: StoredOffer) => fileLinkLine(offer.name, files.link(offer.file), offer.sizeInBytes);

  return {
    async offer(file, to) {
      const hosted = await files.keep(file);
      const offer: StoredOffer = { file: hosted, name: file.name, sizeInBytes: hosted.size, ...to };
      const links = textActivity(`📎 **Your file** (the link stays valid for a limited time):\n\n${link(offer)}`);
      // OneDrive takes no empty file: such a file is only linked.
      if (hosted.size === 0) return { part: 'files', activity: links };
      const offerId = randomUUID();
      await store.set(keys.teamsOffer(offerId), offer, remainingMs(offer));
      return {
        part: 'files',
        activity: consentCardActivity(file.name, hosted.size, offerId),
        fallback: async () => links,
        sent: async (activityId) => {
          if (activityId !== undefined) await store.set(keys.teamsOffer(offerId), { ...offer, activityId }, remainingMs(offer));
        },
      };
    },

    async decide(activity, allowedTenants): Promise<InvokeVerdict> {
      if (activity.name !== FILE_CONSENT_INVOKE) return { status: 501 };
      const value = (activity.value ?? {}) as FileConsentResponse;
      const action = value.action;
      if (action !== 'accept' && action !== 'decline') return { status: 400 };
      const offerId = (value.context as { offerId?: unknown } | undefined)?.offerId;
      const refuse = (reason: 'unknown' | 'expired' | 'not_yours'): InvokeVerdict => ({ status: 200, decision: { kind: 'refuse', reason, action } });
      if (typeof offerId !== 'string' || !OFFER_ID.test(offerId)) return refuse('unknown');
      const offer = await store.get<StoredOffer>(keys.teamsOffer(offerId));
      if (offer === undefined) return refuse('unknown');
      if (!isRecipient(offer, activity) || !checkTenant(activity, allowedTenants).ok) {
        options.logger.warn({ offerId, conversation: activity.conversation?.id }, 'teams file consent refused: the offer belongs to another conversation or user');
        return refuse('not_yours');
      }
      if (offer.file.expiresAtMs <= now()) return refuse('expired');
      if (!(await store.claim(keys.teamsOfferSettled(offerId), remainingMs(offer)))) return { status: 200, decision: { kind: 'duplicate' } };
      return action === 'accept'
        ? { status: 200, decision: { kind: 'accept', offerId, offer, uploadInfo: value.uploadInfo } }
        : { status: 200, decision: { kind: 'decline', offerId, offer } };
    },

    async settle(decision, io, log, urls) {
      if (decision.kind === 'duplicate') return;
      if (decision.kind === 'refuse') {
        // Declining something gone needs no answer; accepting it does.
        if (decision.action === 'accept') await io.send(textActivity(decision.reason === 'not_yours' ? OFFER_NOT_YOURS : OFFER_EXPIRED));
        return;
      }
      const { offer } = decision;
      if (decision.kind === 'decline') {
        await replaceCard(io, offer, `You declined **${offer.name}**, so it was not saved to your OneDrive. You can still download it:\n\n${link(offer)}`, log);
        return;
      }
      const stored = await files.open(offer.file.id);
      if (stored === undefined) {
        await replaceCard(io, offer, OFFER_EXPIRED, log);
        return;
      }
      const info = decision.uploadInfo;
      try {
        await uploadToSession(checkedUploadUrl(info?.uploadUrl, urls), stored, options.upload);
      } catch (err) {
        log.warn({ err, offerId: decision.offerId }, 'teams file consent upload failed');
        await replaceCard(io, offer, `⚠️ I could not save **${offer.name}** to your OneDrive (${uploadFailure(err)}). Download it here instead:\n\n${link(offer)}`, log);
        return;
      }
      const savedName = info?.name ?? offer.name;
      await io.send(fileInfoActivity(savedName, info ?? {})).catch((err: unknown) => log.warn({ err }, 'teams file info card failed'));
      await replaceCard(io, offer, `✅ Uploaded **${savedName}** to your OneDrive.`, log);
    },
  };
}

/** Same conversation, same user id, and the same AAD object id whenever both sides carry one. */
function isRecipient(offer: StoredOffer, activity: Partial<Activity>): boolean {
  const aad = activity.from?.aadObjectId;
  return (
    offer.conversationId === activity.conversation?.id &&
    offer.userId === activity.from?.id &&
    (offer.aadObjectId === undefined || aad === undefined || offer.aadObjectId === aad)
  );
}

/** The consent card (bots-filesv4 "Message requesting permission to upload"). */
export function consentCardActivity(name: string, sizeInBytes: number, offerId: string): Partial<Activity> {
  return {
    type: 'message',
    summary: `File: ${name}`,
    attachments: [
      {
        contentType: FILE_CONSENT_CARD,
        name,
        content: {
          description: `${name}, made by Crunch for you. Allow it to save the file to your OneDrive.`,
          sizeInBytes,
          acceptContext: { offerId },
          declineContext: { offerId },
        },
      },
    ],
  };
}

/** The card Teams shows for a file in the user's OneDrive (bots-filesv4 "Notifying the user"). */
export function fileInfoActivity(name: string, info: FileUploadInfo): Partial<Activity> {
  const fileType = info.fileType ?? name.split('.').pop() ?? '';
  return {
    type: 'message',
    attachments: [
      {
        contentType: FILE_INFO_CARD,
        name,
        ...(info.contentUrl !== undefined ? { contentUrl: info.contentUrl } : {}),
        content: { uniqueId: info.uniqueId, fileType },
      },
    ],
  };
}

/** Turns the consent card into `text` (so it cannot be clicked again); posts `text` when that fails. */
async function replaceCard(io: TurnIO, offer: StoredOffer, text: string, log: Logger): Promise<void> {
  if (offer.activityId !== undefined) {
    try {
      await io.update({ ...textActivity(text), id: offer.activityId, attachments: [] });
      return;
    } catch (err) {
      log.warn({ err }, 'teams could not update the file consent card');
    }
  }
  await io.send(textActivity(text));
}

/**
 * The upload URL comes from the invoke, so it gets the same checks as any URL from an activity (urls.ts):
 * https, no private or link-local addresses, loopback only for a loopback serviceUrl's host or with
 * authentication off. The upload never follows redirects (upload.ts).
 */
function checkedUploadUrl(raw: string | undefined, urls: UrlPolicy): string {
  if (raw === undefined || raw === '') throw new RefusedUploadUrl('Teams sent no upload URL');
  try {
    return checkUrl(raw, urls).href;
  } catch (err) {
    throw new RefusedUploadUrl(`refusing the upload URL: ${(err as Error).message}`, { cause: err });
  }
}

class RefusedUploadUrl extends UploadError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(undefined, message, options);
    this.name = 'RefusedUploadUrl';
  }
}

function uploadFailure(err: unknown): string {
  if (err instanceof RefusedUploadUrl) return 'Teams sent an upload link I may not use';
  const status = err instanceof UploadError ? err.status : undefined;
  if (status === 507) return 'your OneDrive is full';
  if (status === 404 || status === 410) return 'the upload session expired';
  if (status === 401 || status === 403) return 'OneDrive refused the upload';
  if (status === undefined) return 'I could not reach OneDrive';
  return `OneDrive answered HTTP ${status}`;
}
