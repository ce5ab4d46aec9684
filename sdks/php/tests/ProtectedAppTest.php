<?php

declare(strict_types=1);

namespace IdentSphere\Tests;

use IdentSphere\Guard;
use IdentSphere\IdentSphereException;
use IdentSphere\Tests\Support\IdentSphereServer;
use IdentSphere\Tests\Support\IdentSphereTestCase;
use IdentSphere\Tests\Support\PhpServer;
use IdentSphere\Verifier;

/**
 * The PSR-15 middleware (tests/apps/psr15.php) and the plain-PHP guard (tests/apps/guard.php), each in a
 * real app served by `php -S` and called over HTTP, in front of a real IdentSphere. `php -S` gives every
 * request a fresh PHP runtime, as php-fpm does.
 */
final class ProtectedAppTest extends IdentSphereTestCase
{
    /** @return array<string, array{string}> */
    public static function apps(): array
    {
        return ['PSR-15 middleware' => ['psr15'], 'plain PHP guard' => ['guard']];
    }

    /** @param array<string, string> $env */
    private function app(string $app, ?IdentSphereServer $identsphere = null, array $env = []): PhpServer
    {
        return $this->phpServer($app, ['IDENTSPHERE_TEST_URL' => ($identsphere ?? self::server())->url] + $env);
    }

    /**
     * Asserts an IdentSphere error envelope with this status and code.
     *
     * @param array{int, array<string, string>, string} $response
     */
    private static function assertEnvelope(array $response, int $status, string $code): void
    {
        [$received, $headers, $body] = $response;
        self::assertSame($status, $received, $body);
        self::assertSame('application/json', $headers['content-type']);
        $error = json_decode($body, true)['error'];
        self::assertSame([$code, IdentSphereException::REFUSALS[$code][1]], [$error['code'], $error['type']]);
        self::assertNotSame('', $error['message']);
    }

    /** @return array<string, string> */
    private static function bearer(string $token): array
    {
        return ['Authorization' => "Bearer $token"];
    }

    /** @dataProvider apps */
    public function testAValidBearerTokenReachesTheAppWithItsClaims(string $app): void
    {
        $token = self::signUp()->accessToken;
        [$status, , $body] = $this->app($app)->request('GET', '/me', self::bearer($token));
        self::assertSame(200, $status);
        self::assertSame(self::part($token, 1), json_decode($body, true));
    }

    /** @dataProvider apps */
    public function testNoTokenOrABadOneIsRefusedWithTheEnvelope(string $app): void
    {
        $server = $this->app($app);
        $missing = $server->request('GET', '/me');
        self::assertEnvelope($missing, 401, 'token_missing');
        self::assertSame('Bearer', $missing[1]['www-authenticate']);
        self::assertEnvelope($server->request('GET', '/me', ['Authorization' => 'Basic YTpi']), 401, 'token_missing');
        self::assertEnvelope($server->request('GET', '/me', self::bearer('not-a-jwt')), 401, 'token_invalid');
        self::assertEnvelope($server->request('GET', '/me', self::bearer(self::signUp()->refreshToken)), 401, 'token_invalid');
    }

    /** @dataProvider apps */
    public function testOptionalAuthenticationAdmitsAnonymousRequestsButNotBadTokens(string $app): void
    {
        $server = $this->app($app);
        self::assertSame('null', $server->request('GET', '/maybe')[2]);
        self::assertEnvelope($server->request('GET', '/maybe', self::bearer('not-a-jwt')), 401, 'token_invalid');
        $token = self::signUp()->accessToken;
        self::assertSame(self::part($token, 1)['sub'], json_decode($server->request('GET', '/maybe', self::bearer($token))[2], true)['sub']);
    }

    /** @dataProvider apps */
    public function testTheAccessCookieWorksAndACrossSiteUnsafeCookieRequestIsRefused(string $app): void
    {
        $server = $this->app($app);
        $token = self::signUp()->accessToken;
        $cookie = ['Cookie' => "theme=dark; identsphere_at=$token"];
        self::assertSame(200, $server->request('GET', '/me', $cookie)[0]);
        self::assertSame(200, $server->request('POST', '/me', $cookie + ['Origin' => $server->url])[0]);
        self::assertEnvelope($server->request('POST', '/me', $cookie + ['Origin' => 'https://evil.example']), 403, 'csrf_rejected');
        self::assertEnvelope($server->request('POST', '/me', $cookie + ['Sec-Fetch-Site' => 'cross-site']), 403, 'csrf_rejected');
        $bearer = self::bearer($token) + ['Origin' => 'https://evil.example'];
        self::assertSame(200, $server->request('POST', '/me', $bearer)[0], 'a bearer token is not a CSRF risk');
    }

    /** @dataProvider apps */
    public function testAal2RoutesNeedASecondFactor(string $app): void
    {
        $server = $this->app($app);
        $tokens = self::signUp();
        self::assertEnvelope($server->request('GET', '/aal2', self::bearer($tokens->accessToken)), 403, 'insufficient_aal');
        [, $raised] = self::enrollTotp($tokens);
        self::assertSame(200, $server->request('GET', '/aal2', self::bearer($raised['access_token']))[0]);
    }

    /** @dataProvider apps */
    public function testAnUnreachableIdentSphereIs503WithRetryAfter(string $app): void
    {
        $token = self::signUp()->accessToken;
        $nowhere = $this->phpServer($app, ['IDENTSPHERE_TEST_URL' => 'http://127.0.0.1:9']);
        $unavailable = $nowhere->request('GET', '/me', self::bearer($token));
        self::assertEnvelope($unavailable, 503, 'service_unavailable');
        self::assertSame('1', $unavailable[1]['retry-after']);
    }

    /** @dataProvider apps */
    public function testRequestsFetchTheKeysEachTimeWithoutASharedCacheAndOnceWithOne(string $app): void
    {
        $identsphere = $this->ownServer();
        $token = self::signUp($identsphere)->accessToken;
        $claims = self::part($token, 1);
        $count = fn () => $identsphere->served('/.well-known/jwks.json');
        $requests = function (PhpServer $server) use ($token, $claims): void {
            $attacker = self::newRsaKey();
            for ($i = 0; $i < 10; $i++) {
                self::assertSame(200, $server->request('GET', '/me', self::bearer($token))[0]);
                $forged = self::signRs256($attacker, ['alg' => 'RS256', 'typ' => 'JWT', 'kid' => bin2hex(random_bytes(8))], $claims);
                self::assertSame(401, $server->request('GET', '/me', self::bearer($forged))[0]);
            }
        };

        $before = $count();
        $requests($this->app($app, $identsphere));
        self::assertSame(20, $count() - $before, 'memory lasts one request: every request fetches');

        $before = $count();
        $requests($this->app($app, $identsphere, ['IDENTSPHERE_TEST_CACHE' => $identsphere->scratch()]));
        self::assertSame(1, $count() - $before, 'the pool shares the key set and the rate limit of forged kids');
    }

    public function testTheMiddlewareRequiresTheRouteOrTheConfiguredOrganizationAndHonoursAllowedOrigins(): void
    {
        $tokens = self::signUp();
        $organization = $tokens->session->organizationId;
        $server = $this->app('psr15');
        self::assertSame(200, $server->request('GET', "/orgs/$organization", self::bearer($tokens->accessToken))[0]);
        self::assertEnvelope($server->request('GET', '/orgs/' . self::uuid(), self::bearer($tokens->accessToken)), 403, 'not_a_member');
        $pinned = $this->app('psr15', env: ['IDENTSPHERE_TEST_ORG' => self::uuid()]);
        self::assertEnvelope($pinned->request('GET', '/me', self::bearer($tokens->accessToken)), 403, 'not_a_member');

        $allowed = $this->app('psr15', env: ['IDENTSPHERE_TEST_ORIGINS' => 'https://app.example/']);
        $cookie = ['Cookie' => "identsphere_at=$tokens->accessToken"];
        self::assertSame(200, $allowed->request('POST', '/me', $cookie + ['Origin' => 'https://app.example'])[0]);
        self::assertEnvelope($allowed->request('POST', '/me', $cookie + ['Origin' => $allowed->url]), 403, 'csrf_rejected');
    }

    public function testTheGuardReadsTheHeaderApachePassesOnAfterARewrite(): void
    {
        $token = self::signUp()->accessToken;
        $guard = new Guard(new Verifier(self::server()->url));
        $claims = $guard->authenticate(['REQUEST_METHOD' => 'GET', 'REDIRECT_HTTP_AUTHORIZATION' => "Bearer $token"], []);
        self::assertSame(self::part($token, 1)['sub'], $claims?->sub);
        self::assertRefused(403, 'csrf_rejected', fn () => $guard->authenticate(
            ['REQUEST_METHOD' => 'DELETE', 'HTTP_ORIGIN' => 'https://evil.example', 'HTTP_HOST' => 'app.example'],
            ['identsphere_at' => $token],
        ));
    }

    private static function uuid(): string
    {
        return vsprintf('%s%s-%s-%s-%s-%s%s%s', str_split(bin2hex(random_bytes(16)), 4));
    }
}
