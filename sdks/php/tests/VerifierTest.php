<?php

declare(strict_types=1);

namespace IdentSphere\Tests;

use IdentSphere\KeyCache;
use IdentSphere\Model\MfaRequired;
use IdentSphere\Tests\Support\FileCache;
use IdentSphere\Tests\Support\IdentSphereServer;
use IdentSphere\Tests\Support\IdentSphereTestCase;
use IdentSphere\Verifier;
use Psr\SimpleCache\CacheInterface;

final class VerifierTest extends IdentSphereTestCase
{
    private const CLAIMS = ['sub', 'org', 'iss', 'exp', 'iat', 'typ', 'email', 'jti', 'sid', 'aal', 'auth_time', 'auth_method'];

    private static function verifier(?IdentSphereServer $on = null, mixed ...$options): Verifier
    {
        return new Verifier(($on ?? self::server())->url, ...$options);
    }

    public function testAValidAccessTokenVerifiesToEveryClaimOfTheIntegrationPage(): void
    {
        $token = self::signUp()->accessToken;
        $claims = self::verifier()->verify($token);
        $sent = self::part($token, 1);
        self::assertSame(array_intersect_key($sent, array_flip(self::CLAIMS)), $claims->toArray());
        self::assertSame(['access', self::server()->url, false], [$claims->typ, $claims->iss, $claims->isAal2()]);
        self::assertSame([$sent['auth_time'], $sent['auth_method']], [$claims->authTime, $claims->authMethod]);
    }

    public function testForgedAndMisusedTokensAreTokenInvalid(): void
    {
        $tokens = self::signUp();
        $token = $tokens->accessToken;
        [$header, $claims] = [self::part($token, 0), self::part($token, 1)];
        [$encodedHeader, $encodedClaims, $genuineSignature] = explode('.', $token);
        $pending = self::mfaPendingLogin();
        $forged = [
            'another key under our kid' => self::signRs256(self::newRsaKey(), $header, $claims),
            'alg none' => self::b64(json_encode(['alg' => 'none'] + $header)) . ".$encodedClaims.",
            'HS256 keyed with our public key' => self::signHs256(self::publicKeyPem($header['kid']), ['alg' => 'HS256'] + $header, $claims),
            'a changed payload' => "$encodedHeader." . self::b64(json_encode(['sub' => bin2hex(random_bytes(16))] + $claims)) . ".$genuineSignature",
            'no typ in the header' => self::b64(json_encode(array_diff_key($header, ['typ' => 0]))) . ".$encodedClaims.$genuineSignature",
            'no kid' => self::signRs256(self::newRsaKey(), array_diff_key($header, ['kid' => 0]), $claims),
            'an unknown kid' => self::signRs256(self::newRsaKey(), ['kid' => 'nope'] + $header, $claims),
            'a refresh token' => $tokens->refreshToken,
            'an mfa token (RS256, our key)' => $pending->mfaToken,
            'not a JWT' => 'not-a-jwt',
            'padded base64' => "$token==",
            'over 8 KiB' => "$encodedHeader." . str_repeat('A', 9000) . ".$genuineSignature",
            'empty' => '',
        ];
        foreach ($forged as $name => $forgery) {
            $error = self::assertRefused(401, 'token_invalid', fn () => self::verifier()->verify($forgery));
            self::assertSame('authentication_error', $error->type, $name);
        }
        self::assertSame('mfa', self::part($pending->mfaToken, 1)['typ'], 'the mfa token is refused for its type, not its key');
        self::assertRefused(401, 'token_invalid', fn () => self::verifier(issuer: 'https://someone-else.example')->verify($token));
    }

    public function testAnExpiredTokenIsTokenExpiredUnlessWithinTheLeeway(): void
    {
        $on = $this->ownServer(['IDENTSPHERE_ACCESS_TOKEN_TTL' => '1']);
        $token = self::signUp($on)->accessToken;
        [$strict, $lenient] = [self::verifier($on), self::verifier($on, leeway: 60)];
        $strict->verify($token);
        while (time() < self::part($token, 1)['exp']) {
            usleep(100_000);
        }
        self::assertRefused(401, 'token_expired', fn () => $strict->verify($token));
        self::assertSame(self::part($token, 1)['sub'], $lenient->verify($token)->sub);
    }

    public function testAFloodOfUnknownKidsCostsOneJwksFetch(): void
    {
        $on = $this->ownServer();
        $claims = self::part(self::signUp($on)->accessToken, 1);
        $attacker = self::newRsaKey();
        $shared = self::verifier($on);
        $before = $on->served('/.well-known/jwks.json');
        for ($i = 0; $i < 200; $i++) {
            $forged = self::signRs256($attacker, ['alg' => 'RS256', 'typ' => 'JWT', 'kid' => bin2hex(random_bytes(8))], $claims);
            self::assertRefused(401, 'token_invalid', fn () => $shared->verify($forged));
        }
        self::assertSame(1, $on->served('/.well-known/jwks.json') - $before, 'the first kid fetches, then the 30-second limit holds');
    }

    public function testProcessesSharingACacheFetchTheKeysOnce(): void
    {
        $on = $this->ownServer();
        $token = self::signUp($on)->accessToken;
        $cache = new FileCache($on->scratch());
        $before = $on->served('/.well-known/jwks.json');
        // Each Verifier stands for one request of a php-fpm pool: fresh memory, the pool's cache.
        for ($request = 0; $request < 10; $request++) {
            self::assertSame(self::part($token, 1)['sub'], self::verifier($on, cache: $cache)->verify($token)->sub);
        }
        self::assertSame(1, $on->served('/.well-known/jwks.json') - $before);
    }

    public function testACacheThatFailsCostsAFetchNotARefusal(): void
    {
        $token = self::signUp()->accessToken;
        $broken = $this->createStub(CacheInterface::class);
        $broken->method('get')->willThrowException(new \RuntimeException('redis is down'));
        $broken->method('set')->willThrowException(new \RuntimeException('redis is down'));
        self::assertSame(self::part($token, 1)['sub'], self::verifier(cache: $broken)->verify($token)->sub);
    }

    public function testKeysStayInUseWhenIdentSphereGoesDownAndNoneIsServiceUnavailable(): void
    {
        $on = $this->ownServer();
        $token = self::signUp($on)->accessToken;
        $warm = self::verifier($on);
        $warm->verify($token);
        $cold = self::verifier($on);
        $on->stop();
        self::assertSame(self::part($token, 1)['sub'], $warm->verify($token)->sub, 'verified with the cached keys');
        $error = self::assertRefused(503, 'service_unavailable', fn () => $cold->verify($token));
        self::assertSame(['api_error', 1], [$error->type, $error->retryAfter]);
    }

    public function testCacheControlMaxAgeIsReadAsTheServerSendsIt(): void
    {
        self::assertSame(300, KeyCache::maxAge('public, max-age=300'));
        self::assertSame(5, KeyCache::maxAge('Max-Age=5'));
        self::assertSame(0, KeyCache::maxAge('no-store'));
        self::assertNull(KeyCache::maxAge('public'));
        self::assertNull(KeyCache::maxAge('max-age=x'));
        self::assertNull(KeyCache::maxAge(null));
    }

    /** A login that stops at the second factor. */
    private static function mfaPendingLogin(): MfaRequired
    {
        $tokens = self::signUp();
        self::enrollTotp($tokens);
        $pending = self::client()->login($tokens->user->email, self::PASSWORD);
        self::assertInstanceOf(MfaRequired::class, $pending);
        return $pending;
    }
}
