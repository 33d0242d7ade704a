import OpenAI from 'openai';

/**
 * Which API an engine talks to: OpenAI (or any OpenAI-compatible endpoint: vLLM, Ollama, LM Studio, a
 * gateway) or an Azure OpenAI resource's v1 endpoint. Shared by the `responses` and `local` engines.
 */
export interface ModelApi {
  provider: 'openai' | 'azure';
  apiKey: string;
  /** undefined: api.openai.com. For Azure, `<endpoint>/openai/v1`. */
  baseURL: string | undefined;
  /** Azure only: sent as the api-version query parameter. */
  apiVersion: string | undefined;
  /** The model, or the Azure deployment name. */
  model: string;
  /** The system prompt. */
  instructions: string;
}

/** An SDK client with its own retries off: every engine counts attempts in one place (see errors.ts). */
export function createOpenAIClient(config: ModelApi, timeoutMs?: number): OpenAI {
  return new OpenAI({
    apiKey: config.apiKey,
    baseURL: config.baseURL ?? null,
    maxRetries: 0,
    ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}),
    ...(config.provider === 'azure'
      ? {
          defaultHeaders: { 'api-key': config.apiKey },
          ...(config.apiVersion ? { defaultQuery: { 'api-version': config.apiVersion } } : {}),
        }
      : {}),
  });
}
