import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Get, Logger, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { showHiddenBrowserScript } from '../core/visible-text';
import { Public } from '../context/route.decorators';
import { NotFound } from '../core/errors';

const ASSET_TYPES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'visible-text.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
} as const;
type Asset = keyof typeof ASSET_TYPES;

/**
 * src/console/public: beside this file when it runs from src (tsx, jest); from dist/console (npm
 * start) the compiler copies no assets, so the same folder is found in the source tree.
 */
function assetFolder(): string | undefined {
  return [join(__dirname, 'public'), join(__dirname, '..', '..', 'src', 'console', 'public')].find((dir) => existsSync(join(dir, 'index.html')));
}

/**
 * GET /console: the approvers' page. It holds no data and needs no login to load;
 * every call it makes to the API carries the approver's bearer token. Files are read once, at start.
 */
@ApiExcludeController()
@Controller('console')
export class ConsoleController {
  private readonly logger = new Logger(ConsoleController.name);
  private readonly assets = new Map<Asset, Buffer>();

  constructor() {
    const folder = assetFolder();
    if (!folder) {
      this.logger.warn('Approver console files (src/console/public) not found: GET /console answers 404');
      return;
    }
    for (const name of Object.keys(ASSET_TYPES) as Asset[]) {
      // The approval views' own rule for hidden characters, so the page cannot drift from the API.
      this.assets.set(name, name === 'visible-text.js' ? Buffer.from(showHiddenBrowserScript()) : readFileSync(join(folder, name)));
    }
  }

  @Get()
  @Public()
  page(@Res() res: Response): void {
    this.send(res, 'index.html');
  }

  @Get('app.js')
  @Public()
  script(@Res() res: Response): void {
    this.send(res, 'app.js');
  }

  @Get('visible-text.js')
  @Public()
  visibleText(@Res() res: Response): void {
    this.send(res, 'visible-text.js');
  }

  @Get('app.css')
  @Public()
  styles(@Res() res: Response): void {
    this.send(res, 'app.css');
  }

  /** The page's icon: without one every browser asks for /favicon.ico and logs a 404. */
  @Get('icon.svg')
  @Public()
  icon(@Res() res: Response): void {
    this.send(res, 'icon.svg');
  }

  private send(res: Response, name: Asset): void {
    const body = this.assets.get(name);
    if (!body) throw new NotFound('The approver console is not installed with this build');
    res.status(200).type(ASSET_TYPES[name]).set('Cache-Control', 'no-cache').send(body);
  }
}
