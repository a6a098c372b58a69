import { Controller, Get, Res } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { NotFound } from '../../core/errors';
import { GatewayConfig } from '../../config/gateway-config';
import { Public } from '../../context/route.decorators';
import { SCOPES_SUPPORTED } from './oauth-scopes';

const WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** Where the metadata of `resource` is (RFC 9728 §3.1): the well-known part inserted before the resource's path. */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
  return `${url.origin}${WELL_KNOWN}${path}`;
}

/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) of the MCP door: which authorization servers
 * issue tokens for it, for which resource, with which scopes. Served only when `oauth:` is
 * configured (clients that see it may stop sending a configured static token); otherwise 404.
 */
@ApiTags('oauth')
@Controller('.well-known')
export class OAuthMetadataController {
  constructor(private readonly config: GatewayConfig) {}

  @Get('oauth-protected-resource')
  @Public()
  @ApiOperation({ summary: 'RFC 9728 protected resource metadata of /mcp (only when oauth: is configured)' })
  @ApiOkResponse({ description: '{ resource, authorization_servers, scopes_supported, bearer_methods_supported }' })
  @ApiNotFoundResponse({ description: 'No oauth: section: the MCP door takes static tokens only' })
  root(@Res() res: Response): void {
    this.send(res);
  }

  @Get('oauth-protected-resource/mcp')
  @Public()
  @ApiOperation({ summary: 'The same metadata, at the path-suffixed address of /mcp' })
  @ApiOkResponse({ description: '{ resource, authorization_servers, scopes_supported, bearer_methods_supported }' })
  @ApiNotFoundResponse({ description: 'No oauth: section' })
  mcp(@Res() res: Response): void {
    this.send(res);
  }

  private send(res: Response): void {
    const oauth = this.config.oauth;
    if (!oauth) throw new NotFound();
    // A public document that browser-based MCP clients read from other origins.
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.status(200).json({
      resource: oauth.resource,
      authorization_servers: oauth.issuers.map((issuer) => issuer.issuer),
      scopes_supported: SCOPES_SUPPORTED,
      bearer_methods_supported: ['header'],
      resource_name: 'Agent Gateway',
    });
  }
}
