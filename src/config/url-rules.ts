/** A host name or IP literal as the WHATWG URL parser writes it (how allowed_hosts are compared); '' when it is none. */
export function canonicalHost(host: string): string {
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return '';
  }
}

/**
 * Why a request may not go to `url`, or undefined when it may: http(s) only, no credentials in the
 * URL, and (given a list) a host on it. One rule for http tools, upstream MCP servers and webhooks.
 */
export function targetProblem(url: URL, allowedHosts?: readonly string[]): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be http or https';
  if (url.username || url.password) return 'must not hold a user name or password';
  if (allowedHosts && !allowedHosts.includes(url.hostname)) return `host "${url.hostname}" is not in allowed_hosts`;
  return undefined;
}

/** The same for a URL written in the config: also refused when it is not an absolute URL. */
export function urlProblem(url: string, allowedHosts?: readonly string[]): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not an absolute URL';
  }
  return targetProblem(parsed, allowedHosts);
}
