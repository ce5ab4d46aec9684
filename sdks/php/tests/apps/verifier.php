<?php

declare(strict_types=1);

// The Verifier the tests' apps share, as an application would configure it per request: IdentSphere at
// IDENTSPHERE_TEST_URL, and with IDENTSPHERE_TEST_CACHE (a directory) a PSR-16 cache shared by every
// request, as a php-fpm pool would share APCu or Redis.
require_once __DIR__ . '/../autoload.php';

use IdentSphere\Tests\Support\FileCache;
use IdentSphere\Verifier;

$cacheDirectory = getenv('IDENTSPHERE_TEST_CACHE');

return new Verifier(
    (string) getenv('IDENTSPHERE_TEST_URL'),
    cache: is_string($cacheDirectory) && $cacheDirectory !== '' ? new FileCache($cacheDirectory) : null,
);
