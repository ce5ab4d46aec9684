<?php

declare(strict_types=1);

namespace IdentSphere\Tests;

use IdentSphere\Tests\Support\IdentSphereServer;
use IdentSphere\Tests\Support\IdentSphereTestCase;
use IdentSphere\Tests\Support\PostgresBacking;
use IdentSphere\Verifier;

/**
 * An emergency rotation (`identsphere keys rotate`) beside a running server, which needs Postgres and Redis:
 * the embedded store admits one process. CI requires them (IDENTSPHERE_TEST_REQUIRE_POSTGRES).
 */
final class KeyRotationTest extends IdentSphereTestCase
{
    private ?IdentSphereServer $on = null;

    protected function setUp(): void
    {
        $this->on = IdentSphereServer::onPostgres();
        if ($this->on !== null) {
            return;
        }
        $where = PostgresBacking::maintenanceUrl() . ', ' . PostgresBacking::redisUrl();
        if (getenv('IDENTSPHERE_TEST_REQUIRE_POSTGRES')) {
            self::fail("Postgres or Redis is not reachable ($where), and IDENTSPHERE_TEST_REQUIRE_POSTGRES is set");
        }
        self::markTestSkipped("Postgres or Redis is not reachable ($where): key rotation not tested");
    }

    protected function tearDown(): void
    {
        $this->on?->stop();
        parent::tearDown();
    }

    public function testAfterAKeyRotationNewTokensVerifyWithOneRefetchAndOldOnesAreRefused(): void
    {
        $on = $this->on;
        $shared = new Verifier($on->url, jwksRefetchInterval: 1);
        $old = self::signUp($on)->accessToken;
        $shared->verify($old);

        $newKid = trim($on->run('keys', 'rotate'));
        self::waitFor("the server to publish only $newKid", fn () => $on->publishedKids() === [$newKid]);
        $fresh = self::waitFor("a token signed with $newKid", function () use ($on, $newKid): ?string {
            $token = self::signUp($on)->accessToken;
            return self::part($token, 0)['kid'] === $newKid ? $token : null;
        });
        sleep(1); // the refetch interval since the verifier's first fetch

        $before = $on->served('/.well-known/jwks.json');
        for ($i = 0; $i < 3; $i++) {
            self::assertSame(self::part($fresh, 1)['sub'], $shared->verify($fresh)->sub);
        }
        self::assertSame(1, $on->served('/.well-known/jwks.json') - $before, 'one refetch for the new kid, then the cache');
        self::assertRefused(401, 'token_invalid', fn () => $shared->verify($old));
    }

    private static function waitFor(string $what, \Closure $probe): mixed
    {
        $deadline = microtime(true) + 15;
        while (microtime(true) < $deadline) {
            $result = $probe();
            if ($result !== null && $result !== false) {
                return $result;
            }
            usleep(100_000);
        }
        self::fail("timed out waiting for $what");
    }
}
