import { pino, type Logger } from 'pino';
import { type ConversationService, createConversationService, createStore, type Store } from '../../src/core/index.js';
import { createFakeEngine } from '../fakes/engine.js';

/** Store, silent logger and a core over the fake engine: enough to construct an adapter without a stack. */
export async function fakeDeps(): Promise<{ store: Store; logger: Logger; core: ConversationService }> {
  const store = await createStore('memory://');
  const logger = pino({ level: 'silent' });
  const core = createConversationService({
    store,
    engine: createFakeEngine(),
    limits: { maxFileBytes: 1024, maxFilesPerTurn: 1, turnTimeoutMs: 1000 },
    logger,
  });
  return { store, logger, core };
}
