import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import helmet from 'helmet';
import { ConsoleController } from './console.controller';

/**
 * Stricter than the gateway's default headers: no inline script or style, nothing from another
 * origin, no framing, forms that cannot submit natively (a token typed before the script loads
 * never lands in a URL). Applied after the global helmet(), so these win for /console.
 */
const consoleHeaders = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'"],
      connectSrc: ["'self'"],
      fontSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
    },
  },
  frameguard: { action: 'deny' },
});

@Module({ controllers: [ConsoleController] })
export class ConsoleModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(consoleHeaders).forRoutes(ConsoleController);
  }
}
