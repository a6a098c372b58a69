import { fetch as undiciFetch, Response as UndiciResponse } from 'undici';
import type { OAuthIssuer } from '../../config/gateway-config';
import { targetProblem } from '../../config/url-rules';
import { EgressPools } from '../../kinds/egress/egress';
import { boundedBody } from '../../kinds/egress/bounded-body';

/** The most the gateway reads of an issuer's metadata, key set or introspection answer. */
export const MAX_ISSUER_DOCUMENT_BYTES = 256 * 1024;
/** Discovery, key-set and introspection requests give up after this long. */
export const ISSUER_FETCH_TIMEOUT_MS = 5000;

/** A fetch of an issuer's own documents the egress rule refuses, or one that went wrong on the way (never a token problem). */
export class IssuerUnreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IssuerUnreachable';
  }
}

/** What jose's `customFetch` is handed, and what the discovery and introspection ask for. */
export interface IssuerFetchInit {
  headers?: Headers | Record<string, string>;
  method?: string;
  body?: string;
  signal?: AbortSignal;
}

export type IssuerFetch = ReturnType<typeof issuerFetch>;

/**
 * The fetch for one issuer's discovery document, key set and introspection endpoint, under the rule of http tools
 * (src/config/url-rules): http(s), no credentials, a host in the issuer's allowed_hosts; a listed
 * name must resolve to public addresses unless `allow_private_networks`. Redirects are not followed
 * (an answer other than 200 is a failure), and bodies are read up to MAX_ISSUER_DOCUMENT_BYTES.
 */
export function issuerFetch(issuer: OAuthIssuer, pools: EgressPools) {
  return async (input: string | URL, init: IssuerFetchInit = {}): Promise<Response> => {
    const url = new URL(input);
    const problem = targetProblem(url, issuer.allowed_hosts);
    if (problem) throw new IssuerUnreachable(`${url.origin} may not be fetched for issuer ${issuer.issuer}: ${problem}`);
    const response = await undiciFetch(url, {
      method: init.method ?? 'GET',
      headers: { accept: 'application/json', ...Object.fromEntries(new Headers(init.headers)) },
      body: init.body,
      signal: init.signal,
      redirect: 'manual',
      dispatcher: pools.for(url, issuer.allow_private_networks),
    });
    if (!response.body || [101, 204, 205, 304].includes(response.status)) return response;
    const body = boundedBody(
      response.body,
      false,
      MAX_ISSUER_DOCUMENT_BYTES,
      () => new IssuerUnreachable(`${url.origin} sent a document over ${MAX_ISSUER_DOCUMENT_BYTES} bytes`),
    );
    return new UndiciResponse(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}
