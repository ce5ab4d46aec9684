<?php

declare(strict_types=1);

// A PSR-15 app for the tests, served by `php -S`: the middleware in front of a handler that answers with
// the claims it was handed (`null` for none). Routes: /me (IDENTSPHERE_TEST_ORIGINS: allowed origins,
// comma-separated; IDENTSPHERE_TEST_ORG: a required organization), /maybe (optional), /aal2, /orgs/<id>.
require_once __DIR__ . '/../autoload.php';

use IdentSphere\Middleware;
use Nyholm\Psr7\Factory\Psr17Factory;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Server\RequestHandlerInterface;

$verifier = require __DIR__ . '/verifier.php';
$factory = new Psr17Factory();

$request = $factory->createServerRequest($_SERVER['REQUEST_METHOD'], $_SERVER['REQUEST_URI'], $_SERVER)
    ->withCookieParams($_COOKIE);
foreach (getallheaders() as $name => $value) {
    $request = $request->withHeader($name, $value);
}
$path = $request->getUri()->getPath();
$origins = array_filter(explode(',', (string) getenv('IDENTSPHERE_TEST_ORIGINS')));
$organization = getenv('IDENTSPHERE_TEST_ORG') ?: null;
$middleware = match (true) {
    $path === '/maybe' => new Middleware($verifier, $factory, $factory, optional: true),
    $path === '/aal2' => new Middleware($verifier, $factory, $factory, requireAal2: true),
    str_starts_with($path, '/orgs/') => new Middleware($verifier, $factory, $factory,
        organization: fn (ServerRequestInterface $request) => substr($request->getUri()->getPath(), strlen('/orgs/'))),
    default => new Middleware($verifier, $factory, $factory, organization: $organization, allowedOrigins: $origins),
};
$echo = new class ($factory) implements RequestHandlerInterface {
    public function __construct(private readonly Psr17Factory $factory)
    {
    }

    public function handle(ServerRequestInterface $request): ResponseInterface
    {
        $claims = $request->getAttribute(Middleware::CLAIMS);
        return $this->factory->createResponse(200)->withHeader('Content-Type', 'application/json')
            ->withBody($this->factory->createStream(json_encode($claims?->toArray())));
    }
};

$response = $middleware->process($request, $echo);
http_response_code($response->getStatusCode());
foreach ($response->getHeaders() as $name => $values) {
    header("$name: " . implode(', ', $values));
}
echo $response->getBody();
