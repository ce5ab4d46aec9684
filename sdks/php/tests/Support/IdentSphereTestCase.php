<?php

declare(strict_types=1);

namespace IdentSphere\Tests\Support;

use IdentSphere\Client;
use IdentSphere\IdentSphereException;
use IdentSphere\KeyCache;
use IdentSphere\Model\TokenResponse;
use PHPUnit\Framework\TestCase;

/**
 * What the tests do besides the SDK's calls: a shared IdentSphere and servers of their own, sign up users,
 * enroll a second factor, create an organization, forge tokens.
 */
abstract class IdentSphereTestCase extends TestCase
{
    /** Passes IdentSphere's password policy. */
    protected const PASSWORD = 'correct horse battery staple';

    private static ?IdentSphereServer $shared = null;
    /** @var list<IdentSphereServer|PhpServer> */
    private array $started = [];

    /** The server most tests use, started on first use and stopped when the run ends. */
    protected static function server(): IdentSphereServer
    {
        if (self::$shared === null) {
            self::$shared = new IdentSphereServer();
            register_shutdown_function(static fn () => self::$shared?->stop());
        }
        return self::$shared;
    }

    /**
     * A server for this test alone (other settings, or requests counted at the server), stopped after it.
     *
     * @param array<string, string> $overrides
     */
    protected function ownServer(array $overrides = []): IdentSphereServer
    {
        return $this->started[] = new IdentSphereServer($overrides);
    }

    /**
     * `php -S` of a front controller in tests/apps, stopped after the test.
     *
     * @param array<string, string> $env
     */
    protected function phpServer(string $app, array $env): PhpServer
    {
        return $this->started[] = new PhpServer($app, $env);
    }

    protected function tearDown(): void
    {
        foreach ($this->started as $server) {
            $server->stop();
        }
        $this->started = [];
    }

    protected static function client(?IdentSphereServer $on = null): Client
    {
        return new Client(($on ?? self::server())->url);
    }

    protected static function uniqueEmail(): string
    {
        return 'php-sdk-' . bin2hex(random_bytes(8)) . '@example.com';
    }

    /** A new user signed in: the token response. */
    protected static function signUp(?IdentSphereServer $on = null): TokenResponse
    {
        $tokens = self::client($on)->register(self::uniqueEmail(), self::PASSWORD);
        self::assertInstanceOf(TokenResponse::class, $tokens);
        return $tokens;
    }

    /**
     * A JSON request for what the SDK does not wrap (enrolling TOTP, creating an organization); checks the
     * status and returns the decoded answer.
     *
     * @param ?array<string, mixed> $body
     * @return array<string, mixed>
     */
    protected static function api(string $method, string $path, ?string $bearer = null, ?array $body = null, int $status = 200, ?IdentSphereServer $on = null): array
    {
        $headers = ['Content-Type: application/json'];
        if ($bearer !== null) {
            $headers[] = "Authorization: Bearer $bearer";
        }
        $context = stream_context_create(['http' => [
            'method' => $method, 'header' => $headers, 'ignore_errors' => true,
            'content' => match (true) { $body === null => null, $body === [] => '{}', default => json_encode($body) },
        ]]);
        $answer = (string) file_get_contents(($on ?? self::server())->url . $path, false, $context);
        self::assertSame("$status", explode(' ', $http_response_header[0])[1], "$method $path: $answer");
        return $answer === '' ? [] : json_decode($answer, true);
    }

    /** RFC 6238 with what IdentSphere and every authenticator app use: HMAC-SHA1, 6 digits, 30 s steps. */
    protected static function totp(string $secret, ?int $at = null): string
    {
        $mac = hash_hmac('sha1', pack('J', intdiv($at ?? time(), 30)), self::base32Decode($secret), true);
        $offset = ord($mac[19]) & 0x0f;
        return sprintf('%06d', (unpack('N', substr($mac, $offset, 4))[1] & 0x7fffffff) % 1_000_000);
    }

    /** RFC 4648 base32 (the TOTP secret): PHP's standard library has none. */
    private static function base32Decode(string $text): string
    {
        $bits = '';
        foreach (str_split(rtrim(strtoupper($text), '=')) as $char) {
            $bits .= sprintf('%05b', strpos('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', $char));
        }
        return implode('', array_map(fn (string $byte) => chr((int) bindec($byte)), str_split(substr($bits, 0, intdiv(strlen($bits), 8) * 8), 8)));
    }

    /**
     * Enrolls and confirms TOTP in the session of `$tokens` (a recent sign-in): the secret and the
     * confirmation's answer (the session at aal2, with access_token, refresh_token and recovery_codes).
     *
     * @return array{string, array<string, mixed>}
     */
    protected static function enrollTotp(TokenResponse $tokens, ?IdentSphereServer $on = null): array
    {
        $secret = self::api('POST', '/v1/auth/mfa/totp', $tokens->accessToken, [], on: $on)['secret'];
        $confirmed = self::api('POST', '/v1/auth/mfa/totp/confirm', $tokens->accessToken,
            ['code' => self::totp($secret), 'refresh_token' => $tokens->refreshToken], on: $on);
        return [$secret, $confirmed];
    }

    /** A new organization owned by the user of `$accessToken`: its id. */
    protected static function createOrganization(string $accessToken): string
    {
        $slug = 'php-' . bin2hex(random_bytes(4));
        return self::api('POST', '/v1/organizations', $accessToken, ['name' => "Org $slug", 'slug' => $slug], 201)['id'];
    }

    /** @return array<string, mixed> a part of a JWT (0: header, 1: claims) */
    protected static function part(string $token, int $index): array
    {
        return json_decode(base64_decode(strtr(explode('.', $token)[$index], '-_', '+/')), true);
    }

    protected static function b64(string $bytes): string
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }

    /**
     * @param array<string, mixed> $header
     * @param array<string, mixed> $claims
     */
    protected static function signRs256(\OpenSSLAsymmetricKey $key, array $header, array $claims): string
    {
        $input = self::b64(json_encode($header)) . '.' . self::b64(json_encode($claims));
        openssl_sign($input, $signature, $key, OPENSSL_ALGO_SHA256);
        return "$input." . self::b64($signature);
    }

    /**
     * @param array<string, mixed> $header
     * @param array<string, mixed> $claims
     */
    protected static function signHs256(string $secret, array $header, array $claims): string
    {
        $input = self::b64(json_encode($header)) . '.' . self::b64(json_encode($claims));
        return "$input." . self::b64(hash_hmac('sha256', $input, $secret, true));
    }

    protected static function newRsaKey(): \OpenSSLAsymmetricKey
    {
        return openssl_pkey_new(['private_key_bits' => 2048, 'private_key_type' => OPENSSL_KEYTYPE_RSA]);
    }

    /** The PEM of the server's public key with this kid, parsed as the SDK parses it. */
    protected static function publicKeyPem(string $kid): string
    {
        $keys = KeyCache::rs256Keys((string) file_get_contents(self::server()->url . '/.well-known/jwks.json'));
        return openssl_pkey_get_details($keys[$kid])['key'];
    }

    /** Asserts that `$call` throws an IdentSphereException with this status and code, and returns it. */
    protected static function assertRefused(int $status, string $code, \Closure $call): IdentSphereException
    {
        try {
            $call();
        } catch (IdentSphereException $error) {
            self::assertSame([$status, $code], [$error->status, $error->errorCode], (string) $error);
            self::assertNotSame('', $error->type);
            self::assertNotSame('', $error->getMessage());
            return $error;
        }
        self::fail("expected a $status $code refusal");
    }
}
