import { ConfigurationBotFrameworkAuthentication } from 'botbuilder';
import type { Logger } from 'pino';
import type { TeamsAdapterConfig } from '../types.js';

export type BotAuthentication = ConfigurationBotFrameworkAuthentication;
type CredentialsFactory = NonNullable<ConstructorParameters<typeof ConfigurationBotFrameworkAuthentication>[1]>;

/** Adds an `Authorization` header to a request (the connector's ServiceClientCredentials contract). */
export interface RequestSigner {
  signRequest(request: { headers: { set(name: string, value: string): void } }): Promise<unknown>;
}

/**
 * Builds the Bot Framework authentication from the conventional variables (MicrosoftAppId,
 * MicrosoftAppPassword, MicrosoftAppType, MicrosoftAppTenantId). It verifies every inbound token (signature
 * against the published keys, issuer, audience = app id, serviceUrl claim) and gets the bot's outbound token.
 * With no app id (the app mounts the adapter so only with TEAMS_AUTH=off), both are off: the Bot Framework
 * SDK accepts anonymous requests, which is only for local testing (the Agents Playground), so it is logged as
 * an error at start-up, and the route takes only what a local tool on this machine sends (local.ts).
 */
export function createBotAuthentication(config: TeamsAdapterConfig, logger: Logger): BotAuthentication {
  const base = {
    MicrosoftAppId: config.appId ?? '',
    MicrosoftAppPassword: config.appPassword ?? '',
    MicrosoftAppType: config.appType,
    MicrosoftAppTenantId: config.tenantId ?? '',
  };
  if (config.appId === undefined) {
    logger.error(
      'Teams authentication is OFF (TEAMS_AUTH=off, no MicrosoftAppId): /api/messages accepts unsigned requests from this machine only, never through a proxy or tunnel. Use this only for local testing with the Agents Playground; set MicrosoftAppId and MicrosoftAppPassword for Teams.',
    );
    return new ConfigurationBotFrameworkAuthentication({});
  }
  const endpoints = config.endpoints;
  if (endpoints === undefined) return new ConfigurationBotFrameworkAuthentication(base);
  // Parameterized cloud: every endpoint is given, so the SDK uses none of its public-cloud constants.
  return new ConfigurationBotFrameworkAuthentication(
    {
      ...base,
      ToBotFromChannelOpenIdMetadataUrl: endpoints.openIdMetadataUrl,
      ToBotFromEmulatorOpenIdMetadataUrl: endpoints.openIdMetadataUrl,
      ToBotFromChannelTokenIssuer: endpoints.tokenIssuer,
      ToChannelFromBotLoginUrl: endpoints.loginUrl,
      ToChannelFromBotOAuthScope: endpoints.oAuthScope,
      OAuthUrl: endpoints.loginUrl,
      CallerId: 'urn:botframework:custom',
      ValidateAuthority: false,
    },
    clientCredentialsFactory(config.appId, config.appPassword ?? '', endpoints.loginUrl),
  );
}

/**
 * A credentials factory doing a plain OAuth 2.0 client-credentials grant against `${loginUrl}/oauth2/v2.0/token`.
 * Used with endpoint overrides only; the public cloud goes through the SDK's own MSAL-based factory.
 */
function clientCredentialsFactory(appId: string, appPassword: string, loginUrl: string): CredentialsFactory {
  const tokens = new ClientCredentials(appId, appPassword);
  return {
    isValidAppId: async (id: string) => id === appId,
    isAuthenticationDisabled: async () => false,
    createCredentials: async (_appId: string, audience: string | undefined) => {
      const scope = audience ?? 'https://api.botframework.com';
      return {
        signRequest: async (request: { headers: { set(name: string, value: string): void } }) => {
          request.headers.set('authorization', `Bearer ${await tokens.token(`${loginUrl}/oauth2/v2.0/token`, scope)}`);
          return request;
        },
      };
    },
  } as unknown as CredentialsFactory;
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

/** App-only tokens by client credentials, cached per (token URL, scope) until five minutes before expiry. */
export class ClientCredentials {
  private readonly cache = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly clientId: string,
    private readonly clientSecret: string,
  ) {}

  async token(tokenUrl: string, scope: string): Promise<string> {
    const key = `${tokenUrl} ${scope}`;
    const cached = this.cache.get(key);
    if (cached) {
      const token = await cached.catch(() => undefined);
      if (token && token.expiresAt > Date.now()) return token.value;
    }
    const fresh = this.fetchToken(tokenUrl, scope);
    this.cache.set(key, fresh);
    fresh.catch(() => this.cache.delete(key));
    return (await fresh).value;
  }

  private async fetchToken(tokenUrl: string, scope: string): Promise<CachedToken> {
    const scopes = scope.endsWith('/.default') ? scope : `${scope.replace(/\/+$/, '')}/.default`;
    const response = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: this.clientId,
        client_secret: this.clientSecret,
        scope: scopes,
      }),
    });
    const body = (await response.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string };
    if (!response.ok || typeof body.access_token !== 'string') {
      throw new Error(`token request to ${tokenUrl} for ${scopes} failed: ${response.status} ${body.error ?? ''}`.trim());
    }
    const lifetimeMs = (body.expires_in ?? 3600) * 1000;
    return { value: body.access_token, expiresAt: Date.now() + lifetimeMs - 5 * 60 * 1000 };
  }
}
