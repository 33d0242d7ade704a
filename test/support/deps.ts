import { pino, type Logger } from 'pino';
import { type Core, createCore, DEDUPE_TTL_MS, JOINED_TTL_MS, openStorage, type Store } from '../../src/core/index.js';
import { createFakeEngine } from '../fakes/engine.js';

/** Store, silent logger and a core over the fake engine: enough to construct an adapter without a stack. */
export async function fakeDeps(): Promise<{ store: Store; logger: Logger; core: Core }> {
  const storage = await openStorage('memory://', { dedupeMs: DEDUPE_TTL_MS, joinedMs: JOINED_TTL_MS });
  const logger = pino({ level: 'silent' });
  const core = createCore({
    store: storage.store,
    inbox: storage.inbox,
    engine: createFakeEngine(),
    limits: { maxFileBytes: 1024, maxFilesPerTurn: 1, turnTimeoutMs: 1000 },
    logger,
    concurrency: 4,
  });
  return { store: storage.store, logger, core };
}
