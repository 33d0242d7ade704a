import { type Activity, type ConversationReference, TurnContext } from 'botbuilder';
import type { Logger } from 'pino';
import { greetingText, greetOnce, keys, type Store } from '../../../src/core/index.js';
import { textActivity } from '../render/activity.js';
import { checkTenant, scopeOf } from '../receive.js';
import type { ProactiveTurns } from './turns.js';

/**
 * The greeting when someone installs Crunch for a personal chat. Teams says so twice, one activity after the
 * other: `installationUpdate` with action "add", and `conversationUpdate` with the bot in `membersAdded` (the
 * Agents Playground sends both when it opens); uninstalling sends action "remove". The greeting goes straight
 * through the adapter's transport, not through the core's journey: it is not a person's turn (nothing to
 * prepare or run, no order among turns to keep), and the store's claim (greetOnce) makes it once per install,
 * across both activities, redeliveries, restarts and replicas. Uninstalling forgets it, so a reinstall greets.
 */

export type Installation = { kind: 'added' | 'removed'; conversationId: string };

/** The personal-chat install or uninstall `activity` tells of, or undefined (a team or group chat, or anything else). */
export function installationOf(activity: Partial<Activity> & { action?: string }): Installation | undefined {
  const conversationId = activity.conversation?.id;
  if (conversationId === undefined || scopeOf(activity) !== 'personal') return undefined;
  const bot = activity.recipient?.id;
  const names = (members: Activity['membersAdded'] | undefined) => bot !== undefined && (members ?? []).some((m) => m.id === bot);
  if (activity.type === 'installationUpdate' && activity.action === 'add') return { kind: 'added', conversationId };
  if (activity.type === 'installationUpdate' && activity.action === 'remove') return { kind: 'removed', conversationId };
  if (activity.type === 'conversationUpdate' && names(activity.membersAdded)) return { kind: 'added', conversationId };
  if (activity.type === 'conversationUpdate' && names(activity.membersRemoved)) return { kind: 'removed', conversationId };
  return undefined;
}

export interface GreeterDeps {
  store: Store;
  turns: ProactiveTurns;
  allowedTenants: string[];
  logger: Logger;
}

/** Greets a personal chat Crunch was just installed in, once per install; forgets it when Crunch is removed. */
export function createGreeter(deps: GreeterDeps): (activity: Partial<Activity>, installation: Installation) => Promise<void> {
  return async (activity, installation) => {
    const who = `teams:${installation.conversationId}`;
    if (installation.kind === 'removed') {
      await deps.store.delete(keys.greeted(who));
      return;
    }
    // A tenant whose messages would be refused gets no greeting either.
    if (!checkTenant(activity, deps.allowedTenants).ok) return;
    const reference = TurnContext.getConversationReference(activity) as ConversationReference;
    const greeted = await greetOnce(deps.store, who, async () => {
      // The SDK hands an error inside the turn to onTurnError (logged there) rather than to its caller.
      let sent = false;
      await deps.turns.run(reference, async (io) => {
        await io.send(textActivity(greetingText()));
        sent = true;
      });
      if (!sent) throw new Error('Teams did not take the greeting');
    });
    deps.logger.info({ conversation: installation.conversationId, greeted }, greeted ? 'teams: greeted a new personal chat' : 'teams: personal chat greeted already');
  };
}
