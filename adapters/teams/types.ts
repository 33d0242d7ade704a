import type { ConversationReference } from 'botbuilder';

/**
 * The Teams adapter's configuration and the narrow shapes of the Teams payloads it reads. Everything here is
 * plain data (only types from the SDK), so receive.ts and the renderers stay testable on their own.
 */

/**
 * Endpoint overrides for tests and private clouds. When set, inbound tokens are checked against
 * `openIdMetadataUrl`/`tokenIssuer`, and the bot's outbound token comes from a plain OAuth 2.0
 * client-credentials request to `${loginUrl}/oauth2/v2.0/token` (instead of MSAL, which insists on https
 * and on Azure AD instance discovery). All four are needed together.
 */
export interface TeamsEndpoints {
  /** ToBotFromChannelOpenIdMetadataUrl: where the signing keys of inbound tokens are published. */
  openIdMetadataUrl: string;
  /** ToBotFromChannelTokenIssuer: the `iss` inbound tokens must carry. */
  tokenIssuer: string;
  /** ToChannelFromBotLoginUrl: the authority the bot gets its own token from, tenant included. */
  loginUrl: string;
  /** ToChannelFromBotOAuthScope: the audience of the bot's own token. */
  oAuthScope: string;
  /** Microsoft Graph base URL for channel files (default https://graph.microsoft.com/v1.0). */
  graphUrl?: string;
  /** Azure AD base URL for Graph tokens, `${graphLoginUrl}/${tenant}/oauth2/v2.0/token`. */
  graphLoginUrl?: string;
}

/** Compatible with `Config['teams'] & { publicUrl }` from src/config; the rest is optional. */
export interface TeamsAdapterConfig {
  /** MicrosoftAppId. Unset means authentication is OFF (local testing only, logged loudly). */
  appId: string | undefined;
  appPassword: string | undefined;
  appType: 'MultiTenant' | 'SingleTenant' | 'UserAssignedMSI';
  tenantId: string | undefined;
  /** TEAMS_ALLOWED_TENANTS: when non-empty, other tenants are refused before any engine call. */
  allowedTenants: string[];
  /** The bot's public https base URL: signed links to charts and files point here. */
  publicUrl: string;
  /**
   * TEAMS_GRAPH_FILES: fetch files posted in channels and group chats through Microsoft Graph. Needs
   * application permissions granted by an admin (ChannelMessage.Read.All, Chat.Read.All, Files.Read.All);
   * without it, Crunch explains how to send such files instead.
   */
  graphFiles?: boolean;
  /** TEAMS_FILE_URL_SECRET: HMAC key of signed file links; derived from the app password when unset. */
  fileUrlSecret?: string;
  /** How long signed links to charts and files stay valid. Default 24 hours. */
  fileUrlTtlMs?: number;
  /**
   * Offer generated files with Teams' file consent card in personal chats (saved to the user's OneDrive
   * once accepted). Default true; false sends signed links there too, as in channels and group chats.
   */
  fileConsent?: boolean;
  /** Stream the answer text in personal chats (Teams streaming protocol). Default true. */
  streaming?: boolean;
  /** How often the typing indicator is repeated while a turn runs. Default 3 s. */
  typingIntervalMs?: number;
  /** Payload budget per outgoing activity, in bytes of JSON. Default 40 KiB (see render.ts). */
  maxMessageBytes?: number;
  /** How long a file download may take to start (token, redirects, response headers). Default 60 s. */
  downloadTimeoutMs?: number;
  /** How long a started file download may go without data, while more is awaited, before it fails. Default 60 s. */
  downloadIdleTimeoutMs?: number;
  endpoints?: TeamsEndpoints;
  /** Injected clock (ms since epoch) for link expiry; tests pass a fixed one. */
  now?: () => number;
}

export const DEFAULTS = {
  fileUrlTtlMs: 24 * 60 * 60 * 1000,
  typingIntervalMs: 3000,
  maxMessageBytes: 40 * 1024,
  downloadTimeoutMs: 60_000,
  downloadIdleTimeoutMs: 60_000,
  graphUrl: 'https://graph.microsoft.com/v1.0',
  graphLoginUrl: 'https://login.microsoftonline.com',
} as const;

export const FILE_DOWNLOAD_INFO = 'application/vnd.microsoft.teams.file.download.info';
export const ADAPTIVE_CARD = 'application/vnd.microsoft.card.adaptive';
/** The card asking the user to let the bot save a file to their OneDrive (personal chat only). */
export const FILE_CONSENT_CARD = 'application/vnd.microsoft.teams.card.file.consent';
/** The card showing a file in the user's OneDrive, sent after the upload. */
export const FILE_INFO_CARD = 'application/vnd.microsoft.teams.card.file.info';
/** The invoke Teams sends when the user accepts or declines a file consent card. */
export const FILE_CONSENT_INVOKE = 'fileConsent/invoke';

export type TeamsScope = 'personal' | 'channel' | 'groupChat';

/** The parts of `activity.channelData` Crunch reads (Teams channel data). */
export interface TeamsChannelData {
  tenant?: { id?: string };
  team?: { id?: string; aadGroupId?: string; name?: string };
  channel?: { id?: string; name?: string };
}

/** `content` of a `application/vnd.microsoft.teams.file.download.info` attachment (personal chat files). */
export interface FileDownloadInfo {
  /** Pre-authenticated, valid for a few minutes. */
  downloadUrl?: string;
  uniqueId?: string;
  fileType?: string;
}

/** `uploadInfo` of an accepted file consent: an OneDrive upload session plus the file it will become. */
export interface FileUploadInfo {
  name?: string;
  /** Pre-authenticated upload session URL: PUT byte ranges, never with an Authorization header. */
  uploadUrl?: string;
  /** The file's OneDrive/SharePoint URL, for the file info card. */
  contentUrl?: string;
  uniqueId?: string;
  fileType?: string;
}

/** `value` of a `fileConsent/invoke` activity (botframework-schema's FileConsentCardResponse). */
export interface FileConsentResponse {
  type?: string;
  action?: string;
  /** The card's acceptContext or declineContext, as the bot sent it. */
  context?: unknown;
  uploadInfo?: FileUploadInfo;
}

/** A file Teams mentioned but did not hand over (channel and group-chat files live in SharePoint). */
export interface FileHint {
  name: string;
  /** The SharePoint/OneDrive link, when the message carried one. */
  url?: string;
}

/** Where a channel or group-chat message lives, for Microsoft Graph. */
export type GraphMessageLocator =
  | {
      kind: 'channel';
      /** The team's Azure AD group id; Teams often omits it, then it is looked up from `teamThreadId`. */
      teamId?: string;
      /** The team's Teams id (19:…@thread.tacv2), as in channelData.team.id. */
      teamThreadId: string;
      channelId: string;
      rootId: string;
      messageId: string;
    }
  | { kind: 'chat'; chatId: string; messageId: string };

/** How a file of a turn is fetched: a pre-authenticated download link, or a pasted image behind the bot's token. */
export type TeamsFileSource = { kind: 'download'; url?: string } | { kind: 'image'; url: string };

/** What a Teams turn carries for the worker that runs it: the Turn's `platformData`. */
export interface TeamsTurnData {
  /** Where to answer (continueConversationAsync), as Teams described the conversation. */
  reference: ConversationReference;
  scope: TeamsScope;
  tenantId?: string;
  /** Files Teams only mentioned (channel and group-chat files live in SharePoint). */
  fileHints: FileHint[];
  /** Where Microsoft Graph finds this message, for channel and group-chat files. */
  graph?: GraphMessageLocator;
}
