<?php

declare(strict_types=1);

namespace Psr\Http\Server;

use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;

/**
 * PSR-15's middleware, as `psr/http-server-middleware` 1.0 declares it: Debian 12 packages no copy of it
 * (see ../README.md). Applications get it from Composer.
 */
interface MiddlewareInterface
{
    public function process(ServerRequestInterface $request, RequestHandlerInterface $handler): ResponseInterface;
}
