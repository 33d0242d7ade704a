import type { Engine, EngineOutput, Json } from '../engine.js';
import { keys } from '../keys.js';
import type { DeliveryLedger } from '../platform.js';
import type { CodeCell, Reply, ReplyKind, ReplyOutput, ReplyUsage } from '../reply.js';
import type { Store } from '../store/index.js';

/**
 * What a turn has done so far, kept in the store under `delivery:<message key>` so that an attempt
 * resumed after a crash (here or on another replica) carries on instead of starting over: the reply once
 * the engine has answered (outputs as references), the parts of it already posted, and what the adapter
 * remembered (message ids to reuse or clean up).
 */
export interface SavedReply {
  kind: ReplyKind;
  text: string;
  outputs: (Omit<EngineOutput, 'ref'> & { ref: Json; image: boolean })[];
  code: CodeCell[];
  notices: string[];
  error?: { code: string };
  refused?: Reply['refused'];
  usage?: ReplyUsage;
  receipt?: string;
}

interface Record {
  reply?: SavedReply;
  posted: string[];
  memo: { [key: string]: Json };
}

/** Long enough for any resumption; the record is deleted once the turn is done. */
const RECORD_TTL_MS = 24 * 60 * 60 * 1000;

export interface TurnRecord {
  ledger: DeliveryLedger;
  /** The reply an earlier attempt computed, rebuilt with outputs that open through the engine. */
  savedReply(engine: Engine): Reply | undefined;
  saveReply(reply: SavedReply): Promise<void>;
  forget(): Promise<void>;
}

export async function loadTurnRecord(store: Store, messageKey: string, onError: (err: unknown) => void): Promise<TurnRecord> {
  const key = keys.delivery(messageKey);
  const record: Record = (await store.get<Record>(key).catch((err: unknown) => void onError(err))) ?? { posted: [], memo: {} };
  let writes: Promise<void> = Promise.resolve();
  // Writes of one record go one after another, each with the whole record: the last one holds everything.
  const save = () => {
    writes = writes.then(() => store.set(key, record, RECORD_TTL_MS)).catch(onError);
    return writes;
  };
  const ledger: DeliveryLedger = {
    get memo() {
      return record.memo;
    },
    remember(patch) {
      Object.assign(record.memo, patch);
      return save();
    },
    posted: (part) => record.posted.includes(part),
    markPosted(part) {
      if (!record.posted.includes(part)) record.posted.push(part);
      return save();
    },
  };
  return {
    ledger,
    savedReply(engine) {
      const saved = record.reply;
      if (saved === undefined) return undefined;
      const open = (o: SavedReply['outputs'][number]): ReplyOutput => ({
        name: o.name,
        title: o.title,
        mimeType: o.mimeType,
        ...(o.sizeBytes !== undefined ? { sizeBytes: o.sizeBytes } : {}),
        open: (signal) => engine.openOutput(o.ref, signal),
      });
      return {
        kind: saved.kind,
        text: saved.text,
        images: saved.outputs.filter((o) => o.image).map(open),
        files: saved.outputs.filter((o) => !o.image).map(open),
        code: saved.code,
        notices: saved.notices,
        ...(saved.error ? { error: saved.error } : {}),
        ...(saved.refused ? { refused: saved.refused } : {}),
        ...(saved.usage ? { usage: saved.usage } : {}),
        ...(saved.receipt ? { receipt: saved.receipt } : {}),
      };
    },
    saveReply(reply) {
      record.reply = reply;
      return save();
    },
    async forget() {
      await writes;
      await store.delete(key).catch(onError);
    },
  };
}
