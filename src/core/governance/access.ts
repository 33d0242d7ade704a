import type { Turn } from '../turn.js';

/**
 * Who may use Crunch: allow-lists of workspaces (per platform), channels and users. An empty list allows
 * everyone. Checked where turns come in, before anything is downloaded or sent to a model; a refused
 * message gets one line saying whom to ask.
 */
export interface AccessRules {
  /** By platform: Slack team ids (SLACK_ALLOWED_TEAMS), Teams tenant ids (TEAMS_ALLOWED_TENANTS). */
  workspaces: { [platform: string]: string[] };
  /** CRUNCH_ALLOWED_CHANNELS: channel ids; `dm` allows direct messages (one-to-one chats with the bot). */
  channels: string[];
  /** CRUNCH_ALLOWED_USERS: Slack user ids, Teams users' Entra object ids. */
  users: string[];
  /** CRUNCH_ADMIN_CONTACT: whom a refused person should ask ("#it-help", "Dana Ruiz"). */
  adminContact: string | undefined;
}

export type RefusalReason = 'workspace' | 'channel' | 'user' | 'budget';

export interface Refusal {
  reason: RefusalReason;
  /** What the person is told, in markdown. */
  line: string;
}

/** The keyword in CRUNCH_ALLOWED_CHANNELS that allows direct messages. */
export const DIRECT_MESSAGES = 'dm';

const listed = (list: string[], id: string) => list.some((entry) => entry.toLowerCase() === id.toLowerCase());

/** Why `turn` may not be answered, or undefined when it may. Pure. */
export function checkAccess(turn: Turn, rules: AccessRules): Refusal | undefined {
  const { platform, workspace, channel } = turn.conversation;
  const ask = askWhom(rules);
  const workspaces = rules.workspaces[platform] ?? [];
  if (workspaces.length > 0 && !listed(workspaces, workspace)) {
    return { reason: 'workspace', line: `Crunch is not enabled for this workspace. ${ask} if you need it here.` };
  }
  if (rules.channels.length > 0) {
    const allowed = turn.direct === true ? listed(rules.channels, DIRECT_MESSAGES) || listed(rules.channels, channel) : listed(rules.channels, channel);
    if (!allowed) {
      const where = turn.direct === true ? 'in direct messages' : 'in this channel';
      return { reason: 'channel', line: `Crunch is not enabled ${where}. ${ask} to enable it, or use it where it is enabled.` };
    }
  }
  if (rules.users.length > 0 && !listed(rules.users, turn.user.id)) {
    return { reason: 'user', line: `Crunch is not enabled for you yet. ${ask} for access.` };
  }
  return undefined;
}

export function askWhom(rules: Pick<AccessRules, 'adminContact'>): string {
  return rules.adminContact === undefined ? 'Ask your workspace admin' : `Ask ${rules.adminContact}`;
}
