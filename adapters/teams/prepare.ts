import { TeamsInfo } from 'botbuilder';
import type { Logger } from 'pino';
import type { Attachment, Turn } from '../../src/core/index.js';
import { raceAbort } from '../../src/core/index.js';
import { urlPolicy } from './auth/urls.js';
import { authorizationFrom, teamsAttachment } from './files/attachments.js';
import type { DownloadLimits } from './files/download.js';
import { type ChannelFileSource, graphRefusedNotice, GraphPermissionError, unreachableFileNotice } from './files/graph.js';
import type { ProactiveTurns } from './transport/turns.js';
import type { TeamsTurnData } from './types.js';

export interface PrepareDeps {
  turns: ProactiveTurns;
  /** Channel and group-chat files through Microsoft Graph, when TEAMS_GRAPH_FILES is on. */
  graph: ChannelFileSource | undefined;
  /** Authentication off (the Agents Playground): loopback URLs are allowed. */
  authenticationOff: boolean;
  /** How long each download may take to start, and may stall. */
  downloads: DownloadLimits;
  logger: Logger;
}

/**
 * A Teams turn's files → attachments, in the worker that runs it: personal-chat files and pasted images
 * from the activity (downloaded when the core opens them, within the turn's deadline and the download
 * limits), and the files Teams only hinted at, fetched through Microsoft Graph when that is enabled,
 * otherwise explained.
 */
export async function prepareFiles(turn: Turn, signal: AbortSignal, deps: PrepareDeps): Promise<{ attachments: Attachment[]; notices: string[] }> {
  const data = turn.platformData as unknown as TeamsTurnData;
  const policy = urlPolicy(data.reference.serviceUrl, deps.authenticationOff);
  const authorization = async () => authorizationFrom((await deps.turns.get(turn.messageKey, data.reference)).signer);
  const attachments = turn.files.map((ref) => teamsAttachment(ref, { authorization, policy, limits: deps.downloads }, signal));
  const extra = await channelFiles(turn, data, signal, deps);
  return { attachments: [...attachments, ...extra.attachments], notices: extra.notices };
}

async function channelFiles(turn: Turn, data: TeamsTurnData, signal: AbortSignal, deps: PrepareDeps): Promise<{ attachments: Attachment[]; notices: string[] }> {
  const hints = data.fileHints;
  if (hints.length === 0) return { attachments: [], notices: [] };
  const { graph } = deps;
  if (graph !== undefined && data.graph !== undefined && data.tenantId !== undefined) {
    try {
      let locator = data.graph;
      if (locator.kind === 'channel' && locator.teamId === undefined) {
        // Graph addresses a team by its Azure AD group id, which message activities usually lack.
        const { context } = await deps.turns.get(turn.messageKey, data.reference);
        const teamThreadId = locator.teamThreadId;
        locator = { ...locator, teamId: (await raceAbort(TeamsInfo.getTeamDetails(context, teamThreadId), signal)).aadGroupId };
      }
      const found = await graph.files(data.tenantId, locator, signal);
      if (found.attachments.length > 0 || found.notices.length > 0) return found;
    } catch (err) {
      if (signal.aborted) throw err;
      deps.logger.warn({ err }, 'microsoft graph file lookup failed');
      if (err instanceof GraphPermissionError) return { attachments: [], notices: hints.map((h) => graphRefusedNotice(h, err.permission)) };
    }
  }
  return { attachments: [], notices: hints.map((h) => unreachableFileNotice(h, data.scope, graph !== undefined)) };
}
