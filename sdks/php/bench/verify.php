<?php

declare(strict_types=1);

// What verifying an access token costs in PHP, per call: `php bench/verify.php` (IDENTSPHERE_BIN or the
// workspace's debug build, as the tests). A real IdentSphere issues the token; the calls are in process:
// the raw RS256 check alone, Verifier::verify with its keys in memory (a long-running worker), a new
// Verifier per call reading the keys from a shared PSR-16 cache (php-fpm with a cache), a new Verifier per
// call without one (php-fpm without: a JWKS fetch per request, over loopback HTTP), and the PSR-15
// middleware around a handler that does nothing, against that handler alone.
require __DIR__ . '/../tests/autoload.php';

use IdentSphere\Client;
use IdentSphere\KeyCache;
use IdentSphere\Middleware;
use IdentSphere\Tests\Support\FileCache;
use IdentSphere\Tests\Support\IdentSphereServer;
use IdentSphere\Verifier;
use Nyholm\Psr7\Factory\Psr17Factory;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Server\RequestHandlerInterface;

$rounds = (int) (getenv('ROUNDS') ?: 20000);

function measure(string $name, int $rounds, Closure $call): void
{
    $times = [];
    for ($i = 0; $i < $rounds; $i++) {
        $started = hrtime(true);
        $call();
        $times[] = (hrtime(true) - $started) / 1000;
    }
    sort($times);
    printf("| %-66s | %7.1f | %7.1f |\n", $name, $times[intdiv($rounds, 2)], $times[(int) floor($rounds * 0.99)]);
}

$server = new IdentSphereServer();
$cacheDirectory = sys_get_temp_dir() . '/identsphere-sdk-php-bench-' . bin2hex(random_bytes(6));
mkdir($cacheDirectory, 0700);
try {
    $token = (new Client($server->url))->register('bench-' . bin2hex(random_bytes(8)) . '@example.com', 'correct horse battery staple')->accessToken;
    $verifier = new Verifier($server->url);
    $verifier->verify($token);
    $cache = new FileCache($cacheDirectory);
    (new Verifier($server->url, cache: $cache))->verify($token);
    $key = array_values(KeyCache::rs256Keys((string) file_get_contents("$server->url/.well-known/jwks.json")))[0];
    [$input, $signature] = [substr($token, 0, strrpos($token, '.')), base64_decode(strtr(substr($token, strrpos($token, '.') + 1), '-_', '+/'))];
    $factory = new Psr17Factory();
    $handler = new class ($factory) implements RequestHandlerInterface {
        public function __construct(private readonly Psr17Factory $factory)
        {
        }

        public function handle(ServerRequestInterface $request): ResponseInterface
        {
            return $this->factory->createResponse(204);
        }
    };
    $middleware = new Middleware($verifier, $factory, $factory);
    $request = fn () => $factory->createServerRequest('GET', '/')->withHeader('Authorization', "Bearer $token");

    printf("%d calls each; PHP %s; %s\n| Path | p50 µs | p99 µs |\n|---|---|---|\n", $rounds, PHP_VERSION, OPENSSL_VERSION_TEXT);
    measure('raw RS256 check (openssl_verify)', $rounds, fn () => openssl_verify($input, $signature, $key, OPENSSL_ALGO_SHA256));
    measure('Verifier::verify, keys in memory (a long-running worker)', $rounds, fn () => $verifier->verify($token));
    measure('new Verifier per request, keys from a PSR-16 file cache', $rounds, fn () => (new Verifier($server->url, cache: $cache))->verify($token));
    measure('new Verifier per request, no cache (a JWKS fetch each time)', intdiv($rounds, 20), fn () => (new Verifier($server->url))->verify($token));
    measure('PSR-15 handler alone (the baseline)', $rounds, fn () => $handler->handle($request()));
    measure('PSR-15 handler behind IdentSphere\Middleware', $rounds, fn () => $middleware->process($request(), $handler));
} finally {
    $server->stop();
    exec('rm -rf ' . escapeshellarg($cacheDirectory));
}
