<?php

declare(strict_types=1);

namespace IdentSphere;

/** @internal base64url without padding, strictly: what JWTs and JWKs use. */
final class Base64Url
{
    /** The bytes of a base64url text, or null when it is not strictly that (padding included). */
    public static function decode(string $text): ?string
    {
        if (preg_match('/^[A-Za-z0-9_-]*$/D', $text) !== 1 || strlen($text) % 4 === 1) {
            return null;
        }
        $bytes = base64_decode(strtr($text, '-_', '+/'), true);
        return $bytes === false ? null : $bytes;
    }
}
