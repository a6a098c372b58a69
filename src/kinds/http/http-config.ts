import { toolEntrySchema } from '../../config/config.schema';
import { SECRET_REFERENCE, type ToolCommon } from '../../config/gateway-config';
import type { ToolKindConfig } from '../../config/tool-kind-config';
import { canonicalHost } from '../../config/url-rules';

/** `{arg}` in an http tool's URL template: an argument, percent-encoded when the call runs. */
export const URL_PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export interface HttpRequestTemplate {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Absolute http(s) URL; `{arg}` placeholders are filled with percent-encoded arguments. */
  url: string;
  /** Header values may hold `${secret:NAME}`, resolved at execution time. */
  headers: Record<string, string>;
}

/** A `kind: http` tool: one request to a listed host, built from a template and the arguments. */
export interface HttpTool extends ToolCommon {
  kind: 'http';
  request: HttpRequestTemplate;
  /** Host names or IP literals, canonical (as the WHATWG URL parser writes them). */
  allowed_hosts: string[];
  /** May a listed host name resolve to a loopback, private or link-local address? */
  allow_private_networks: boolean;
}

declare module '../../config/gateway-config' {
  interface ToolTypes {
    http: HttpTool;
  }
}

type HttpFields = Pick<HttpTool, 'request' | 'allowed_hosts' | 'allow_private_networks'>;

/** gateway.yaml's `kind: http` entries: the URL template is an absolute http(s) URL whose placeholders are arguments; secrets are declared. */
export const httpToolConfig: ToolKindConfig = {
  name: 'http',
  kinds: ['http'],
  toolSchemas: [
    toolEntrySchema('http', false, {
      required: ['request', 'allowed_hosts'],
      properties: {
        request: {
          type: 'object',
          additionalProperties: false,
          required: ['method', 'url'],
          properties: {
            method: { enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] },
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            headers: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
          },
        },
        allowed_hosts: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, uniqueItems: true },
        allow_private_networks: { type: 'boolean', default: false },
      },
    }),
  ],
  parse(name, entry, { secrets, fail }) {
    const t = entry as typeof entry & HttpFields & { input_schema: Record<string, unknown> };
    const at = `tools.${name}.request`;
    let url: URL;
    try {
      url = new URL(t.request.url.replace(URL_PLACEHOLDER, 'x'));
    } catch {
      return fail(`${at}.url`, 'not an absolute URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`${at}.url`, 'must be http or https');
    const declared = (t.input_schema.properties ?? {}) as Record<string, unknown>;
    for (const [, arg] of t.request.url.matchAll(URL_PLACEHOLDER)) {
      if (!Object.prototype.hasOwnProperty.call(declared, arg)) fail(`${at}.url`, `placeholder {${arg}} is not a property of input_schema`);
    }
    for (const [header, value] of Object.entries(t.request.headers)) {
      for (const [, secret] of value.matchAll(SECRET_REFERENCE)) {
        if (!Object.prototype.hasOwnProperty.call(secrets, secret)) fail(`${at}.headers.${header}`, `secret "${secret}" is not declared under secrets`);
      }
    }
    t.allowed_hosts.forEach((host, i) => {
      if (canonicalHost(host) === '') fail(`tools.${name}.allowed_hosts[${i}]`, `"${host}" is not a host name or IP address`);
    });
    const fields: HttpFields = { request: t.request, allowed_hosts: t.allowed_hosts.map(canonicalHost), allow_private_networks: t.allow_private_networks };
    return { fields };
  },
};
