<?php

declare(strict_types=1);

namespace Psr\Http\Server;

use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;

/**
 * PSR-15's request handler, as `psr/http-server-handler` 1.0 declares it: Debian 12 packages no copy of it
 * (see ../README.md). Applications get it from Composer.
 */
interface RequestHandlerInterface
{
    public function handle(ServerRequestInterface $request): ResponseInterface;
}
